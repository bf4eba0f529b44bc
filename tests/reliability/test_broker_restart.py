"""Promise 2: restarting the broker loses no job.

Real processes: redis-server, the API under uvicorn, two `celery worker -c 1`. Five jobs are
submitted: two run, three wait in the broker's queue. Then redis is stopped and started again.

- With persistence (append-only file), the queue survives the restart by itself. The API's
  re-dispatch is set to wait ten minutes here, so a job the broker lost would hang and fail the
  test; every job ends `succeeded` and none was sent twice.
- Without persistence, the restart empties the broker. The job store still holds the jobs as
  queued; the API's reaper sees that the broker holds fewer messages than there are queued jobs
  and sends them again (ADGM_REDISPATCH_AFTER_SECONDS=20, ADGM_REAPER_SECONDS=1), and they finish.
"""

import json
import signal
import time
from datetime import UTC, datetime

import pytest

from fault_harness import SMALL_JOB
from process_harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

JOBS, WORKERS, EPOCHS = 5, 2, 3


def statuses(client, ids: list[str]) -> dict[str, str]:
    return {job_id: client.get(f"/jobs/{job_id}").json()["status"] for job_id in ids}


@pytest.mark.parametrize("persistent", [True, False], ids=["append-only", "no-persistence"])
def test_a_broker_restart_loses_no_job(persistent, redis_server, api, start_celery_worker, service_env,
                                       job_store_reader):
    redis = redis_server(persistent)
    env = {**service_env, "ADGM_BROKER_URL": redis.url}
    # a message a worker has taken but whose job it has not claimed yet looks lost to the reaper (a
    # harmless duplicate); 20 s is longer than a Celery worker's first claim takes here
    env["ADGM_REDISPATCH_AFTER_SECONDS"] = "20"
    if persistent:
        env["ADGM_REDISPATCH_AFTER_SECONDS"] = "600"  # the reaper must not be what saves the jobs
    workers = [start_celery_worker(env, f"worker{index}") for index in range(1, WORKERS + 1)]
    api.start(env)
    with api.client() as client:
        ids = []
        for index in range(JOBS):
            response = client.post("/train", json={**SMALL_JOB, "epochs": EPOCHS, "seed": index})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        wait_for(lambda: list(statuses(client, ids).values()).count("running") == WORKERS, 120,
                 "both workers to be training")
        queued = [job_id for job_id, status in statuses(client, ids).items() if status == "queued"]
        assert len(queued) == JOBS - WORKERS
        assert redis.client().llen("gpu") == len(queued), "the queued jobs' messages wait in the broker"
        sent_before = {job_id: job_store_reader.job(job_id).dispatched_at for job_id in queued}

        redis.restart(signal.SIGTERM)
        restarted, restarted_at = time.monotonic(), datetime.now(UTC)
        if persistent:
            assert redis.client().llen("gpu") >= 1, "the append-only file brought the queue back"

        finals = wait_for(lambda: all_finished(client, ids), 180, "every job to end")
        recovered_after = time.monotonic() - restarted

    for job_id in ids:
        assert finals[job_id]["status"] == "succeeded", (finals[job_id], *[w.tail() for w in workers], api.process.tail())
        assert [p["epoch"] for p in finals[job_id]["history"]] == list(range(1, EPOCHS + 1))
        assert [model.id for model in job_store_reader.models_of(job_id)] == [finals[job_id]["model_id"]]
    logs = "".join(worker.text() for worker in workers)
    assert all(logs.count(f"job {job_id}: succeeded") == 1 for job_id in ids), "each job trained to the end once"

    sent_after = {job_id: job_store_reader.job(job_id).dispatched_at for job_id in queued}
    resent = [job_id for job_id in queued if sent_after[job_id] != sent_before[job_id]]
    api_log = api.process.text()
    if persistent:
        assert resent == [] and "not in the broker's queue" not in api_log
    else:
        assert sorted(resent) == sorted(queued), "every job the broker lost was sent again"
        assert all(f"job {job_id} was not in the broker's queue; sent again" in api_log
                              for job_id in resent)
    print("RELIABILITY broker-restart", json.dumps({
        "persistent": persistent, "jobs_submitted": JOBS, "queued_at_restart": len(queued),
        "jobs_completed": sum(final["status"] == "succeeded" for final in finals.values()), "jobs_lost": 0,
        "jobs_resent_by_reaper": len(resent),
        "seconds_restart_to_last_resend": max([(sent_after[job_id] - restarted_at).total_seconds() for job_id in resent],
                                              default=None),
        "seconds_restart_to_all_done": round(recovered_after, 1),
    }))


def all_finished(client, ids: list[str]) -> dict[str, dict] | None:
    jobs = {job_id: client.get(f"/jobs/{job_id}").json() for job_id in ids}
    return jobs if all(job["status"] in ("succeeded", "failed", "cancelled") for job in jobs.values()) else None
