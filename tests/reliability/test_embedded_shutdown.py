"""The embedded mode under signals, with the real server (`uvicorn app.main:app`, one embedded
worker): a worker SIGKILLed while idle does not hang the API, and SIGTERM to the whole process
group (what `timeout`, systemd and Ctrl-C's SIGINT do) ends it within 10 s without losing a job."""

import os
import signal
import time
from pathlib import Path

import pytest

from fault_harness import SMALL_JOB
from process_harness import wait_for


def worker_pids(api) -> list[int]:
    """The API's child processes (forked by any of its threads): its embedded workers."""
    tasks = Path(f"/proc/{api.process.popen.pid}/task").glob("*/children")
    return sorted(int(child) for task in tasks for child in task.read_text().split())


def wait_until_worker_ready(api) -> int:
    wait_for(lambda: "embedded worker" in api.process.text() and "ready" in api.process.text(), 60,
             "the embedded worker to be ready")
    [pid] = worker_pids(api)
    return pid


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_killed_idle_worker_does_not_hang_train_requests(api, service_env, job_store_reader):
    api.start(service_env)
    os.kill(wait_until_worker_ready(api), signal.SIGKILL)
    time.sleep(0.5)  # the worker is dead, not yet noticed by the reaper
    with api.client(timeout=10) as client:
        started = time.monotonic()
        response = client.post("/train", json={**SMALL_JOB, "epochs": 2})
        answered = time.monotonic() - started
        print(f"\nPOST /train after SIGKILL of the idle worker answered in {answered * 1000:.0f} ms")
        assert response.status_code == 202 and answered < 1.0
        job_id = response.json()["id"]
        wait_for(lambda: job_store_reader.job(job_id).status == "succeeded", 180, "the job to succeed")
    assert len(worker_pids(api)) == 1  # the respawned worker trained it


@pytest.mark.parametrize("moment", ["idle", "training"])
def test_sigterm_to_the_process_group_ends_the_api_within_10_s(api, service_env, job_store_reader, moment):
    api.start(service_env)
    wait_until_worker_ready(api)
    job_id = None
    if moment == "training":
        with api.client() as client:
            job_id = client.post("/train", json={**SMALL_JOB, "epochs": 500}).json()["id"]
        wait_for(lambda: len(job_store_reader.progress(job_id)) >= 1, 120, "the first epoch")
    pgid = api.process.popen.pid
    started = time.monotonic()
    os.killpg(pgid, signal.SIGTERM)
    wait_for(lambda: api.process.popen.poll() is not None and group_gone(pgid), 10,
             "the API and its worker to exit", interval=0.05)
    print(f"\nSIGTERM to the group ({moment}): everything exited in {time.monotonic() - started:.2f} s")
    if job_id is not None:
        assert job_store_reader.job(job_id).status == "queued"  # handed back, not lost
