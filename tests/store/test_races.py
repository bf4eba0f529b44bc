"""Races the job store promises to survive, each run for real, on SQLite and on PostgreSQL:
two reapers in two processes, `succeed` against `requeue_stale`, `request_cancel` against
`claim`, the queue cap under concurrent creations, and two embedded workers on one queue."""

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from app.jobs.dispatch import EmbeddedDispatcher
from process_harness import wait_for
from store.db import utcnow
from store.ids import new_id
from store.jobs import JobStore, QueueFull
from store.status import JobStatus
from store.tables import Job, TrainedModel

PARAMS = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4,
          "seed": 0}
ROUNDS = 12


def read(store: JobStore, job_id: str) -> Job:
    with store.sessions() as session:
        return session.get(Job, job_id)


def orphan(store: JobStore) -> tuple[str, str]:
    """A running job whose worker stopped beating an hour ago; (job id, claim token)."""
    job, token = store.create(PARAMS, "digits5k", None), new_id()
    assert store.claim(job.id, token)
    with store.sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(hours=1)))
    return job.id, token


def together(*calls):
    """Runs the calls in threads released at the same moment; their results in order."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


REAPER = """
import json, sys, time
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
url, start = sys.argv[1], float(sys.argv[2])
store = JobStore(make_sessionmaker(make_engine(url)), stale_after_seconds=30)
store.count_queued()  # connected before the start
time.sleep(max(0.0, start - time.time()))
print(json.dumps(store.requeue_stale()))
"""


def test_two_reapers_in_two_processes_requeue_each_job_once(store, database_url):
    orphans = {orphan(store)[0] for _ in range(30)}
    start = time.time() + 4  # both processes have imported and connected by then
    reapers = [subprocess.Popen([sys.executable, "-c", REAPER, database_url, str(start)], stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    requeued = [json.loads(reaper.communicate(timeout=60)[0]) for reaper in reapers]
    assert all(reaper.returncode == 0 for reaper in reapers)
    assert sorted(requeued[0] + requeued[1]) == sorted(orphans)  # each job by exactly one reaper
    assert all(read(store, job_id).status == JobStatus.QUEUED for job_id in orphans)


def test_succeed_racing_requeue_stale_ends_one_way_only(store):
    for _ in range(ROUNDS):
        job_id, token = orphan(store)
        model = TrainedModel(id=new_id(), name="m", job_id=job_id, dataset="digits5k", created_at=utcnow(),
                             config={}, metrics={}, sha256="0" * 64)
        succeeded, requeued = together(lambda: store.succeed(job_id, token, model), store.requeue_stale)
        job = read(store, job_id)
        with store.sessions() as session:
            models = session.scalar(select(func.count()).select_from(TrainedModel).where(TrainedModel.job_id == job_id))
        if succeeded:
            assert (job.status, job.model_id, models, requeued) == (JobStatus.SUCCEEDED, model.id, 1, [])
        else:
            assert (job.status, job.model_id, models, requeued) == (JobStatus.QUEUED, None, 0, [job_id])


def test_request_cancel_racing_claim_never_runs_a_cancelled_job_unnoticed(store):
    for _ in range(ROUNDS):
        job = store.create(PARAMS, "digits5k", None)
        claimed, _cancel = together(lambda: store.claim(job.id, "worker"), lambda: store.request_cancel(job.id))
        stored = read(store, job.id)
        assert stored.cancel_requested
        if claimed:  # the worker sees the request at its first heartbeat
            assert stored.status == JobStatus.RUNNING and store.heartbeat(job.id, "worker").cancel_requested
        else:
            assert stored.status == JobStatus.CANCELLED and stored.claim_token is None


def test_the_queue_cap_holds_under_concurrent_creations(store):
    def create():
        try:
            return store.create(PARAMS, "digits5k", None, max_queued=5).id
        except QueueFull:
            return None

    created = together(*[create] * 16)
    assert len([job_id for job_id in created if job_id]) == 5
    assert store.count_queued() == 5


def test_two_embedded_workers_run_every_job_once(store, database_url, make_settings):
    settings = make_settings(database_url=database_url, embedded_workers=2, worker_torch_threads=1)
    dispatcher = EmbeddedDispatcher(settings, store)
    dispatcher.start()
    try:
        jobs = [store.create(PARAMS, "digits5k", None).id for _ in range(4)]
        dispatcher.submit(jobs[0])
        wait_for(lambda: all(read(store, job_id).status == JobStatus.SUCCEEDED for job_id in jobs), 300,
                 "four jobs to succeed on two workers", interval=0.5)
    finally:
        dispatcher.stop()
    with store.sessions() as session:
        models = session.scalars(select(TrainedModel.job_id)).all()
    assert sorted(models) == sorted(jobs)  # one model a job: none ran twice
    assert all(read(store, job_id).attempts == 1 for job_id in jobs)
