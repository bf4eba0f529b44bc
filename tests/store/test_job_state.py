"""The job state machine on SQLite and on PostgreSQL: every transition is compare-and-set, so a
job is claimed by one worker, finished once, and never lost."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from store.db import utcnow
from store.ids import new_id
from store.jobs import JobFinished, JobNotFound, JobStore
from store.status import JobStatus
from store.tables import Job, JobProgress, TrainedModel

PARAMS = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 3}


def read(store: JobStore, job_id: str) -> Job:
    with store.sessions() as session:
        return session.get(Job, job_id)


def report(epoch: int, epochs: int = 3) -> dict:
    return {"epoch": epoch, "epochs": epochs, "elbo": -100.0 - epoch, "labelled_accuracy": 0.5,
            "test_accuracy": None, "examples_per_second": 1000.0, "eta_seconds": 1.0, "learning_rate": 1e-3}


def model_record(job_id: str) -> TrainedModel:
    return TrainedModel(id=new_id(), name="m", job_id=job_id, dataset="digits5k", created_at=utcnow(),
                        config={}, metrics={}, sha256="0" * 64)


def age_heartbeat(store: JobStore, job_id: str, seconds: float = 3600) -> None:
    with store.sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def test_a_new_job_is_queued(store):
    job = store.create(PARAMS, "digits5k", "first")
    stored = read(store, job.id)
    assert stored.status == JobStatus.QUEUED and stored.name == "first" and stored.params == PARAMS
    assert stored.created_at.tzinfo is not None
    assert store.queued_ids() == [job.id] and store.count_queued() == 1


def test_only_one_of_many_concurrent_claims_wins(store):
    job = store.create(PARAMS, "digits5k", None)
    results, barrier = {}, threading.Barrier(8)

    def claim(token):
        barrier.wait()
        results[token] = store.claim(job.id, token)

    threads = [threading.Thread(target=claim, args=(f"worker{index}",)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [token for token, won in results.items() if won]
    assert len(winners) == 1
    stored = read(store, job.id)
    assert stored.status == JobStatus.RUNNING and stored.claim_token == winners[0] and stored.attempts == 1
    assert stored.started_at is not None and stored.heartbeat_at is not None
    assert store.queued_ids() == []


def test_a_job_is_finished_once(store):
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "a")
    model = model_record(job.id)
    assert store.succeed(job.id, "a", model)
    assert not store.succeed(job.id, "a", model_record(job.id))
    assert not store.fail(job.id, "a", "late failure")
    assert not store.cancelled(job.id, "a")
    assert not store.claim(job.id, "b")
    stored = read(store, job.id)
    assert stored.status == JobStatus.SUCCEEDED and stored.model_id == model.id and stored.error is None
    with store.sessions() as session:
        assert session.query(TrainedModel).count() == 1


def test_progress_is_recorded_and_a_resumed_epoch_replaces_its_row(store):
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "a")
    for epoch in (1, 2, 3):
        assert store.record_progress(job.id, "a", report(epoch))
    assert store.record_progress(job.id, "a", report(2) | {"elbo": -50.0})  # resumed from epoch 1's checkpoint
    with store.sessions() as session:
        rows = session.query(JobProgress).filter_by(job_id=job.id).order_by(JobProgress.seq).all()
    assert [(row.epoch, row.elbo) for row in rows] == [(1, -101.0), (2, -50.0)]


def test_a_worker_that_lost_its_job_can_write_nothing(store):
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "old")
    age_heartbeat(store, job.id)
    assert store.requeue_stale() == [job.id]
    assert read(store, job.id).status == JobStatus.QUEUED
    assert store.claim(job.id, "new")
    assert store.heartbeat(job.id, "old").held is False
    assert not store.record_progress(job.id, "old", report(1))
    assert not store.succeed(job.id, "old", model_record(job.id))
    assert not store.release(job.id, "old")
    assert store.heartbeat(job.id, "new").held
    assert store.succeed(job.id, "new", model_record(job.id))
    assert read(store, job.id).attempts == 2


def test_a_stale_running_job_can_be_taken_over_directly(store):
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "old")
    assert not store.claim(job.id, "new")  # the old worker is alive
    age_heartbeat(store, job.id)
    assert store.claim(job.id, "new")  # a re-delivered message after the old worker died
    assert read(store, job.id).claim_token == "new"


def test_cancel_a_queued_job(store):
    job = store.create(PARAMS, "digits5k", None)
    cancelled = store.request_cancel(job.id)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at is not None
    assert not store.claim(job.id, "a")
    with pytest.raises(JobFinished, match="already cancelled"):
        store.request_cancel(job.id)


def test_cancel_a_running_job_goes_through_its_worker(store):
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "a")
    assert store.heartbeat(job.id, "a").cancel_requested is False
    assert store.request_cancel(job.id).status == JobStatus.RUNNING
    beat = store.heartbeat(job.id, "a")
    assert beat.held and beat.cancel_requested
    assert store.cancelled(job.id, "a")
    assert read(store, job.id).status == JobStatus.CANCELLED


def test_cancel_unknown_and_finished_jobs(store):
    with pytest.raises(JobNotFound):
        store.request_cancel(new_id())
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "a") and store.fail(job.id, "a", "boom")
    with pytest.raises(JobFinished, match="already failed"):
        store.request_cancel(job.id)
    assert read(store, job.id).error == "boom"


def test_the_reaper_requeues_cancels_or_gives_up(store):
    fresh, stale, cancelling, doomed = (store.create(PARAMS, "digits5k", None) for _ in range(4))
    for job in (fresh, stale, cancelling, doomed):
        assert store.claim(job.id, "w")
    store.request_cancel(cancelling.id)
    # `doomed` has already lost a worker once: max_attempts is 2.
    age_heartbeat(store, doomed.id)
    assert store.requeue_stale() == [doomed.id] and store.claim(doomed.id, "w2")
    for job in (stale, cancelling, doomed):
        age_heartbeat(store, job.id)
    assert store.requeue_stale() == [stale.id]
    assert read(store, fresh.id).status == JobStatus.RUNNING
    assert read(store, stale.id).status == JobStatus.QUEUED
    assert read(store, stale.id).claim_token is None
    assert read(store, cancelling.id).status == JobStatus.CANCELLED
    failed = read(store, doomed.id)
    assert failed.status == JobStatus.FAILED and "lost 2 times" in failed.error
    assert store.requeue_stale() == []


def test_release_hands_the_job_back_without_counting_an_attempt(store):
    job = store.create(PARAMS, "digits5k", None)
    assert store.claim(job.id, "a")
    assert store.release(job.id, "a")
    stored = read(store, job.id)
    assert stored.status == JobStatus.QUEUED and stored.attempts == 0 and stored.heartbeat_at is None
    assert store.claim(job.id, "b")


def test_undispatched_jobs(store):
    first, second = store.create(PARAMS, "digits5k", None), store.create(PARAMS, "digits5k", None)
    assert store.undispatched() == store.undispatched(60) == [first.id, second.id]
    store.mark_dispatched(first.id)
    assert store.undispatched() == store.undispatched(60) == [second.id]
    assert store.undispatched(0) == [first.id, second.id]
