"""worker/training.py: a real (tiny) training job from claim to model, cancelled, handed back and
resumed, failed, and taken away from a worker that was presumed dead."""

import hashlib
import threading

import pytest
from sqlalchemy import update

from adgm_core.predictor import Predictor
from store.db import utcnow
from store.ids import new_id
from store.status import JobStatus
from store.tables import Job, JobProgress, TrainedModel
from process_harness import wait_for
from worker.training import JobRunner

TINY = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 2, "hidden": [32], "z_dim": 4, "a_dim": 4,
        "skip": True, "learning_rate": 1e-3, "batch_size": 100, "mc_samples": 1, "seed": 0, "name": None}


@pytest.fixture
def settings(make_settings):
    return make_settings()


def read(store, job_id) -> Job:
    with store.sessions() as session:
        return session.get(Job, job_id)


def history(store, job_id) -> list[JobProgress]:
    with store.sessions() as session:
        return session.query(JobProgress).filter_by(job_id=job_id).order_by(JobProgress.seq).all()


def run_in_thread(runner, job_id, **kwargs):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("value", runner.run(job_id, **kwargs)))
    thread.start()
    return thread, outcome


def test_a_job_trains_to_a_checked_model(settings, store):
    job = store.create(TINY, "digits5k", "digits")
    assert JobRunner(settings, store).run(job.id) == "succeeded"
    done = read(store, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.error is None and done.finished_at >= done.started_at
    assert [row.epoch for row in history(store, job.id)] == [1, 2]
    with store.sessions() as session:
        model = session.get(TrainedModel, done.model_id)
    directory = settings.artifacts.models_dir / model.id
    assert model.job_id == job.id and model.name == "digits" and model.dataset == "digits5k"
    assert model.sha256 == hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    assert model.config["hidden"] == [32] and model.config["skip"] is True
    assert model.metrics["epochs"] == 2
    predictor = Predictor.from_directory(directory, expected_sha256=model.sha256)
    assert predictor.sample([3, 3], seed=0).shape == (2, 28, 28)
    assert not (settings.artifacts.training_states_dir / job.id).exists()  # the resumable state is gone once done
    assert JobRunner(settings, store).run(job.id) == "skipped"  # a duplicate message does nothing


def test_a_running_job_is_cancelled_between_batches(settings, store):
    job = store.create(TINY | {"epochs": 200}, "digits5k", None)
    thread, outcome = run_in_thread(JobRunner(settings, store), job.id)
    wait_for(lambda: len(history(store, job.id)) >= 1, 120, "the first epoch's progress", interval=0.05)
    store.request_cancel(job.id)
    thread.join(timeout=60)
    assert outcome["value"] == "cancelled"
    done = read(store, job.id)
    assert done.status == JobStatus.CANCELLED and done.model_id is None
    assert len(history(store, job.id)) < 200
    assert not any(settings.artifacts.models_dir.glob("*"))  # no model, not even a partial one
    assert not (settings.artifacts.training_states_dir / job.id).exists()


def test_a_job_handed_back_resumes_from_its_checkpoint(settings, store):
    job = store.create(TINY | {"epochs": 4}, "digits5k", None)
    stop = threading.Event()
    thread, outcome = run_in_thread(JobRunner(settings, store), job.id, should_exit=stop.is_set)
    wait_for(lambda: len(history(store, job.id)) >= 2, 120, "the second epoch's progress", interval=0.05)
    stop.set()  # the worker shuts down
    thread.join(timeout=60)
    assert outcome["value"] == "released"
    assert read(store, job.id).status == JobStatus.QUEUED
    before = history(store, job.id)
    checkpointed = len(before)  # checkpoint_every is 1: every reported epoch is saved
    assert (settings.artifacts.training_states_dir / job.id / "state.json").is_file()

    assert JobRunner(settings, store).run(job.id) == "succeeded"
    after = history(store, job.id)
    assert [row.epoch for row in after] == [1, 2, 3, 4]
    # the epochs before the hand-back were not run again: their rows are the original ones
    assert [row.seq for row in after[:checkpointed]] == [row.seq for row in before]
    assert read(store, job.id).attempts == 1


def test_a_job_whose_data_vanished_fails_with_the_reason(settings, store):
    missing = new_id()
    job = store.create(TINY | {"dataset": missing}, missing, None)
    assert JobRunner(settings, store).run(job.id) == "failed"
    done = read(store, job.id)
    assert done.status == JobStatus.FAILED and "Unknown data set" in done.error and missing in done.error


def test_a_worker_presumed_dead_stops_and_finishes_nothing(settings, store):
    job = store.create(TINY | {"epochs": 200}, "digits5k", None)
    thread, outcome = run_in_thread(JobRunner(settings, store), job.id)
    wait_for(lambda: len(history(store, job.id)) >= 1, 120, "the first epoch's progress", interval=0.05)
    with store.sessions.begin() as session:  # its heartbeats stop arriving…
        session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow().replace(year=2000)))
    assert store.requeue_stale() == [job.id]  # …so the reaper gives the job to someone else
    thread.join(timeout=60)
    assert outcome["value"] == "lost"
    done = read(store, job.id)
    assert done.status == JobStatus.QUEUED and done.model_id is None and done.finished_at is None
    assert (settings.artifacts.training_states_dir / job.id / "state.json").is_file()  # kept for the next worker


def test_bf16_on_a_cpu_without_native_bf16_fails_the_job_with_the_reason(settings, store, fake_cpu):
    """A Celery worker's CPU is not the API's, so the worker checks its own before training."""
    fake_cpu("avx2", "fma")
    job = store.create({**TINY, "bf16": True}, "digits5k", None)
    assert JobRunner(settings.model_copy(update={"device": "cpu"}), store).run(job.id) == "failed"
    failed = read(store, job.id)
    assert "no native bfloat16" in failed.error and "Fake CPU" in failed.error
    assert history(store, job.id) == [] and failed.model_id is None
