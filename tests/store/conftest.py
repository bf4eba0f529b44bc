"""Fixtures of the store's tests: an empty database on SQLite and on PostgreSQL, and a job store
on it."""

import pytest

from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.schema import migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url):
    """A job store on the migrated database: stale after 60 s, failed after 2 lost workers."""
    engine = make_engine(database_url)
    migrate(engine)
    yield JobStore(make_sessionmaker(engine), stale_after_seconds=60, max_attempts=2)
    engine.dispose()
