"""Fixtures for the API tests: the ASGI app under TestClient, with or without a trained model."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from adgm_core.data import load_builtin


@pytest.fixture
def client(make_settings, start_client) -> TestClient:
    """The API on an empty job store, no training worker (jobs stay queued)."""
    return start_client(make_settings())


@pytest.fixture
def model_client(trained_state, make_settings, start_client) -> TestClient:
    """The API on a copy of the session's store: one succeeded job and its trained model."""
    return start_client(make_settings(trained_state))


def _encode(image: np.ndarray | Image.Image, format: str = "PNG") -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def encode():
    """encode(uint8 array or PIL image, format="PNG") → the file's bytes."""
    return _encode


@pytest.fixture(scope="session")
def test_digits():
    """(images uint8 N×28×28, labels) of the offline set's test split: real handwritten digits."""
    _train, test = load_builtin("digits5k")
    return test.images, test.labels
