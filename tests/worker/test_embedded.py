"""The embedded worker processes that the API starts when no broker is configured."""

import os
import signal

import pytest

from app.jobs.dispatch import EmbeddedDispatcher
from store.status import JobStatus
from store.tables import Job, JobProgress
from process_harness import wait_for

TINY = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4,
        "skip": True, "learning_rate": 1e-3, "batch_size": 100, "mc_samples": 1, "seed": 0, "name": None}


@pytest.fixture
def settings(make_settings):
    return make_settings(embedded_workers=1, worker_torch_threads=1)


@pytest.fixture
def dispatcher(settings, store):
    dispatcher = EmbeddedDispatcher(settings, store)
    dispatcher.start()
    yield dispatcher
    dispatcher.stop(timeout=30)


def status(store, job_id) -> str:
    with store.sessions() as session:
        return session.get(Job, job_id).status


def epochs_done(store, job_id) -> int:
    with store.sessions() as session:
        return session.query(JobProgress).filter_by(job_id=job_id).count()


def test_the_worker_process_trains_a_queued_job(dispatcher, store):
    job = store.create(TINY, "digits5k", None)
    dispatcher.submit(job.id)
    wait_for(lambda: status(store, job.id) == JobStatus.SUCCEEDED, 180, "the job to succeed", interval=0.1)
    [process] = dispatcher.processes
    assert process.poll() is None and process.pid != os.getpid()


def test_stopping_hands_the_running_job_back_to_the_queue(dispatcher, store):
    job = store.create(TINY | {"epochs": 500}, "digits5k", None)
    dispatcher.submit(job.id)
    wait_for(lambda: epochs_done(store, job.id) >= 1, 180, "the first epoch", interval=0.1)
    [process] = dispatcher.processes
    dispatcher.stop(timeout=60)
    assert process.returncode == 0  # it stopped by itself, it was not killed
    assert status(store, job.id) == JobStatus.QUEUED


def test_a_dead_worker_is_replaced(dispatcher, store):
    [first] = dispatcher.processes
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    dispatcher.supervise()
    [second] = dispatcher.processes
    assert second is not first and second.poll() is None
    job = store.create(TINY, "digits5k", None)
    dispatcher.submit(job.id)
    wait_for(lambda: status(store, job.id) == JobStatus.SUCCEEDED, 180, "the job to succeed", interval=0.1)
