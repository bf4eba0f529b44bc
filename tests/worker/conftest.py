"""Fixtures of the worker tests: a job store on each test module's own `settings`."""

import pytest

from app.core.db import create_tables, make_engine, make_sessionmaker
from app.jobs.state import JobStore


@pytest.fixture
def store(settings):
    engine = make_engine(settings.database_url)
    create_tables(engine)
    yield JobStore.from_settings(make_sessionmaker(engine), settings)
    engine.dispose()
