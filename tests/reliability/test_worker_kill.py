"""Promise 1: a Celery worker SIGKILLed mid-training loses no job and throws away at most the epochs
since the job's last checkpoint.

Real processes: redis-server (append-only), the API under uvicorn, two `celery worker -c 1`. Each
job is killed once, after it has checkpointed some epochs (checkpoint every epoch), in one of two
ways: SIGKILL to the pool process that trains (what the kernel's OOM killer does), or SIGKILL to the
worker's whole process group (a machine or container gone), which is then started again as a
supervisor would. The job's heartbeat goes stale, the API's reaper re-queues it, and a worker
resumes it from its checkpoint. The job's progress rows tell which epochs ran after the kill.
"""

import io
import json
import os
import signal
from dataclasses import dataclass, field

import pytest
from PIL import Image

from store.config import Settings
from fault_harness import SMALL_JOB
from process_harness import wait_for

EPOCHS = 6
# (how, after which reported epoch): each job is killed once. ADGM_KILL_ROUNDS > 1 is a soak: that
# many times as many jobs, with kill points moving through the epochs.
ROUNDS = int(os.environ.get("ADGM_KILL_ROUNDS", "1"))
CHECKPOINT_EVERY = int(os.environ.get("ADGM_KILL_CHECKPOINT_EVERY", "1"))  # soaks may checkpoint less often
KILLS = [(("pool process", "whole worker")[index % 2], 1 + (index + index // 4) % (EPOCHS - 2))
         for index in range(4 * ROUNDS)]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300 * ROUNDS)]


@dataclass
class Kill:
    how: str
    after_epoch: int
    job_id: str
    done: bool = False
    worker: str = ""
    epoch_at_kill: int = 0  # the last epoch reported before the kill
    seq_at_kill: int = 0  # progress rows up to this one were written before the kill
    first_epoch_after: int = 0
    redone: int = 0
    rows: list = field(default_factory=list)


def holder(celery, job_id: str) -> tuple[str, int] | None:
    """(node name, pool process id) of the worker executing the job's task, if one is."""
    for node, tasks in (celery.control.inspect(timeout=1.0, limit=2).active() or {}).items():
        for task in tasks:
            if job_id in json.dumps(task.get("args")):
                return node, task["worker_pid"]
    return None


def test_killed_workers_lose_no_job_and_resume_from_the_checkpoint(
    redis_server, api, start_celery_worker, service_env, job_store_reader
):
    from store.queue import make_celery

    redis = redis_server(persistent=True)
    env = {**service_env, "ADGM_BROKER_URL": redis.url, "ADGM_CHECKPOINT_EVERY": str(CHECKPOINT_EVERY)}
    workers = {name: start_celery_worker(env, name) for name in ("worker1", "worker2")}
    api.start(env)
    celery = make_celery(Settings(_env_file=None, broker_url=redis.url))
    with api.client() as client:
        kills = []
        for index, (how, after_epoch) in enumerate(KILLS):
            response = client.post("/train", json={**SMALL_JOB, "epochs": EPOCHS, "seed": index, "name": f"kill {index}"})
            assert response.status_code == 202, response.text
            kills.append(Kill(how, after_epoch, response.json()["id"]))

        def inject() -> bool:
            """Kills every job that has reached its kill point; True when all have been killed."""
            for kill in kills:
                if kill.done:
                    continue
                rows = job_store_reader.progress(kill.job_id)
                if not rows or rows[-1][1] < kill.after_epoch or job_store_reader.job(kill.job_id).status != "running":
                    continue
                found = holder(celery, kill.job_id)
                if found is None:
                    continue
                node, pool_pid = found
                rows = job_store_reader.progress(kill.job_id)
                if kill.how == "pool process":
                    os.kill(pool_pid, signal.SIGKILL)
                else:
                    process = workers[node.split("@")[0]]
                    process.kill_group()
                    process.start()
                kill.done, kill.worker = True, node
                kill.seq_at_kill, kill.epoch_at_kill = rows[-1]
                assert kill.epoch_at_kill < EPOCHS, "the job finished before it could be killed"
            return all(kill.done for kill in kills)

        wait_for(inject, 150 * ROUNDS, "every job to reach its kill point", interval=0.1)
        finals = {kill.job_id: wait_for(lambda: finished(client, kill.job_id), 150 * ROUNDS, f"job {kill.job_id} to end")
                  for kill in kills}

        for kill in kills:
            final = finals[kill.job_id]
            assert final["status"] == "succeeded", (kill, final["error"], *[w.tail() for w in workers.values()])
            assert [p["epoch"] for p in final["history"]] == list(range(1, EPOCHS + 1))
            kill.rows = job_store_reader.progress(kill.job_id)
            after = [epoch for seq, epoch in kill.rows if seq > kill.seq_at_kill]
            kill.first_epoch_after = after[0]
            kill.redone = max(0, kill.epoch_at_kill - kill.first_epoch_after + 1)
            # Resumed from its last checkpoint (the one at or before the last reported epoch, or the
            # next one if the kill fell between writing it and reporting its epoch), not from epoch 0.
            last_checkpoint = kill.epoch_at_kill // CHECKPOINT_EVERY * CHECKPOINT_EVERY
            assert last_checkpoint + 1 <= kill.first_epoch_after <= kill.epoch_at_kill + 2, kill
            if CHECKPOINT_EVERY == 1:
                assert kill.first_epoch_after > 1, kill
            models = job_store_reader.models_of(kill.job_id)
            assert [model.id for model in models] == [final["model_id"]], "one job, one model"
            assert job_store_reader.job(kill.job_id).attempts == 2, "claimed once before the kill, once after"

        # The resumed model serves: a PNG of the right size.
        sample = client.get("/sample", params={"label": 3, "n": 4, "model": finals[kills[0].job_id]["model_id"]})
        assert sample.status_code == 200
        assert Image.open(io.BytesIO(sample.content)).size == (2 + 4 * 30, 2 + 30)

    logs = "".join(process.text() for process in workers.values())
    succeeded_lines = {kill.job_id: logs.count(f"job {kill.job_id}: succeeded") for kill in kills}
    assert all(count == 1 for count in succeeded_lines.values()), succeeded_lines
    summary = {
        "jobs_submitted": len(kills), "jobs_completed": sum(f["status"] == "succeeded" for f in finals.values()),
        "jobs_lost": 0, "jobs_duplicated": 0, "kills": len(kills),
        "epochs_redone": sum(kill.redone for kill in kills), "epochs_trained": len(kills) * EPOCHS,
        "checkpoint_every": CHECKPOINT_EVERY,
        "kill_points": [(kill.how, kill.epoch_at_kill, kill.first_epoch_after) for kill in kills],
    }
    print("RELIABILITY worker-kill", json.dumps(summary))


def finished(client, job_id: str) -> dict | None:
    job = client.get(f"/jobs/{job_id}").json()
    return job if job["status"] in ("succeeded", "failed", "cancelled") else None
