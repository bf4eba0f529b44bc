"""The API's reaper: jobs whose worker died go back to work, in both modes."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.db import create_tables, make_engine, make_sessionmaker, utcnow
from app.jobs.dispatch import CeleryDispatcher, EmbeddedDispatcher
from app.jobs.reaper import Reaper
from app.jobs.state import JobStatus, JobStore
from app.models import Job
from worker.celery_app import queue_depth


@pytest.fixture
def store(make_settings):
    settings = make_settings()
    engine = make_engine(settings.database_url)
    create_tables(engine)
    yield JobStore(make_sessionmaker(engine), stale_after_seconds=30)
    engine.dispose()


def orphan(store: JobStore) -> str:
    """A running job whose worker stopped beating a minute ago."""
    job = store.create({"epochs": 1}, "digits5k", None)
    assert store.claim(job.id, "dead worker")
    with store.sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=1)))
    return job.id


def status(store, job_id) -> str:
    with store.sessions() as session:
        return session.get(Job, job_id).status


def test_embedded_mode_requeues_and_wakes_the_workers(make_settings, store):
    settings = make_settings()
    dispatcher = EmbeddedDispatcher(settings, store)  # not started: the wake-up is what we watch
    job_id = orphan(store)
    Reaper(settings, store, dispatcher).reap()
    assert status(store, job_id) == JobStatus.QUEUED
    assert dispatcher.wake.is_set()


def test_celery_mode_requeues_and_sends_the_job_again(make_settings, store, redis_url):
    settings = make_settings(broker_url=redis_url)
    dispatcher = CeleryDispatcher(settings, store)
    try:
        job_id = orphan(store)
        Reaper(settings, store, dispatcher).reap()
        assert status(store, job_id) == JobStatus.QUEUED
        assert queue_depth(dispatcher.celery) == 1
        Reaper(settings, store, dispatcher).reap()  # nothing new to do: no duplicate
        assert queue_depth(dispatcher.celery) == 1
    finally:
        dispatcher.stop()
