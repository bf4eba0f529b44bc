"""Fixtures of the worker tests: a job store on each test module's own `settings`."""

import pytest

from store.db import make_engine, make_sessionmaker
from store.schema import migrate
from store.jobs import JobStore


@pytest.fixture
def store(settings):
    engine = make_engine(settings.database_url)
    migrate(engine)
    yield JobStore.from_settings(make_sessionmaker(engine), settings)
    engine.dispose()
