"""Fixtures of the worker tests: a job store on each test module's own `settings`."""

import pytest

from app.core.db import create_tables, make_engine, make_sessionmaker
from app.jobs.state import JobStore


@pytest.fixture
def store(settings):
    engine = make_engine(settings.database_url)
    create_tables(engine)
    yield JobStore(make_sessionmaker(engine), settings.stale_after_seconds, settings.max_attempts)
    engine.dispose()
