"""Fixtures for the API tests: the ASGI app under TestClient, with or without a trained model."""

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(make_settings, start_client) -> TestClient:
    """The API on an empty job store, no training worker (jobs stay queued)."""
    return start_client(make_settings())


@pytest.fixture
def model_client(trained_state, make_settings, start_client) -> TestClient:
    """The API on a copy of the session's store: one succeeded job and its trained model."""
    return start_client(make_settings(trained_state))
