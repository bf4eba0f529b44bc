"""The API's reaper: jobs whose worker died go back to work, in both modes."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from store.db import make_engine, make_sessionmaker, utcnow
from store.schema import migrate
from app.jobs.dispatch import CeleryDispatcher, EmbeddedDispatcher
from app.jobs.reaper import Reaper
from app.uploads import UploadProcessor
from store.jobs import JobStore
from store.status import JobStatus
from store.tables import Job
from store.queue import queue_depth
from process_harness import wait_for


@pytest.fixture
def store(make_settings):
    settings = make_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    yield JobStore(make_sessionmaker(engine), stale_after_seconds=30)
    engine.dispose()


TINY = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4,
        "seed": 0}


def orphan(store: JobStore) -> str:
    """A running job whose worker stopped beating a minute ago."""
    job = store.create(TINY, "digits5k", None)
    assert store.claim(job.id, "dead worker")
    with store.sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=1)))
    return job.id


def status(store, job_id) -> str:
    with store.sessions() as session:
        return session.get(Job, job_id).status


def test_embedded_mode_requeues_and_wakes_the_workers(make_settings, store):
    # The worker polls the store once a minute: only the reaper's nudge can make it start within seconds.
    settings = make_settings(embedded_workers=1, worker_poll_seconds=60, worker_torch_threads=1)
    dispatcher = EmbeddedDispatcher(settings, store)
    dispatcher.start()
    try:
        job_id = orphan(store)
        time.sleep(8)  # the worker has started and found nothing queued
        Reaper(settings, store, dispatcher, UploadProcessor(settings, store.sessions)).reap()
        wait_for(lambda: status(store, job_id) != JobStatus.QUEUED, 15, "the nudged worker to take the job")
    finally:
        dispatcher.stop()


def test_celery_mode_requeues_and_sends_the_job_again(make_settings, store, redis_url):
    settings = make_settings(broker_url=redis_url)
    dispatcher = CeleryDispatcher(settings, store)
    try:
        job_id = orphan(store)
        Reaper(settings, store, dispatcher, UploadProcessor(settings, store.sessions)).reap()
        assert status(store, job_id) == JobStatus.QUEUED
        assert queue_depth(dispatcher.celery) == 1
        Reaper(settings, store, dispatcher, UploadProcessor(settings, store.sessions)).reap()  # nothing new to do: no duplicate
        assert queue_depth(dispatcher.celery) == 1
    finally:
        dispatcher.stop()
