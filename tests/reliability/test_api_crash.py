"""Promise 3: the API SIGKILLed while clients upload data sets and submit jobs loses nothing it
acknowledged and leaves nothing half-written.

Real processes: the API under uvicorn (embedded mode without a training worker, so jobs stay queued
and the store only sees the API's own writes), concurrent clients hammering POST /datasets and
POST /train, SIGKILL at a random moment, restart; three rounds on the same store. Then: every
answer that was 2xx is there with exactly what the client sent (a stored upload holds the same
images and labels, by sha256 of the arrays; the server stores uploads in one canonical .npz), every data-set record has its complete file, no temporary upload file is left, the
database passes its integrity check, and the server serves.
"""

import hashlib
import io
import json
import random
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from fault_harness import SMALL_JOB

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROUNDS, UPLOADERS, SUBMITTERS = 3, 3, 3


def npz_upload(rng: np.random.Generator, n_images: int) -> bytes:
    """A valid data set: `n_images` 28×28 images, the first 20 labelled (two per class)."""
    labels = np.full(n_images, -1, np.int64)
    labels[:20] = np.arange(20) % 10
    buffer = io.BytesIO()
    np.savez(buffer, images=rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8), labels=labels)
    return buffer.getvalue()


class Hammer:
    """Client threads sending writes until told to stop; keeps what was acknowledged."""

    def __init__(self, url: str, seed: int):
        self.url, self.seed = url, seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.datasets: dict[str, tuple[str, int]] = {}  # id → (sha256 of the arrays sent, n_images)
        self.jobs: dict[str, dict] = {}  # id → body sent
        self.unexpected: list[tuple[int, str]] = []  # answers other than 201/202 to valid requests
        self.sent = self.failed = 0

    def _loop(self, worker: int, send) -> None:
        rng = np.random.default_rng([self.seed, worker])
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    send(client, rng)
                except httpx.TransportError:  # the server is gone: an answer never came
                    with self.lock:
                        self.failed += 1
                    time.sleep(0.05)

    def _upload(self, client: httpx.Client, rng: np.random.Generator) -> None:
        n_images = int(rng.choice([50, 1000]))
        data = npz_upload(rng, n_images)
        with self.lock:
            self.sent += 1
        response = client.post("/datasets", files={"file": ("set.npz", data, "application/octet-stream")})
        with self.lock:
            if response.status_code == 201:
                self.datasets[response.json()["id"]] = (arrays_sha256(io.BytesIO(data)), n_images)
            else:
                self.unexpected.append((response.status_code, response.text))

    def _submit(self, client: httpx.Client, rng: np.random.Generator) -> None:
        body = {**SMALL_JOB, "epochs": int(rng.integers(1, 2000)), "seed": int(rng.integers(0, 2**31 - 1)),
                "name": f"crash {rng.integers(1 << 30)}"}
        with self.lock:
            self.sent += 1
        response = client.post("/train", json=body)
        with self.lock:
            if response.status_code == 202:
                self.jobs[response.json()["id"]] = body
            else:
                self.unexpected.append((response.status_code, response.text))

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._loop, args=(index, self._upload)) for index in range(UPLOADERS)]
        threads += [threading.Thread(target=self._loop, args=(UPLOADERS + index, self._submit))
                    for index in range(SUBMITTERS)]
        for thread in threads:
            thread.start()
        return threads


def arrays_sha256(npz) -> str:
    """sha256 of an .npz's images and labels, whatever the container's bytes."""
    with np.load(npz, allow_pickle=False) as archive:
        return hashlib.sha256(archive["images"].tobytes() + archive["labels"].astype(np.int64).tobytes()).hexdigest()


def test_killing_the_api_during_writes_loses_nothing_acknowledged(api, service_env, tmp_path):
    # No training worker, and no cap on queued jobs (ADGM_MAX_QUEUED_JOBS): every submission is a write.
    env = {**service_env, "ADGM_EMBEDDED_WORKERS": "0", "ADGM_MAX_QUEUED_JOBS": "1000000"}
    datasets_dir = Path(env["ADGM_ARTIFACT_DIR"]) / "datasets"
    acknowledged_datasets, acknowledged_jobs = {}, {}
    sent = unanswered = leftovers = 0
    chance = random.Random(5)
    for round_ in range(ROUNDS):
        api.start(env)
        hammer = Hammer(api.url, seed=round_)
        threads = hammer.run()
        time.sleep(chance.uniform(1.5, 3.0))
        api.process.kill_group()  # SIGKILL mid-traffic
        leftovers += len(list(datasets_dir.glob(".*.tmp")))
        hammer.stop.set()
        for thread in threads:
            thread.join(60)
        assert hammer.unexpected == []
        acknowledged_datasets.update(hammer.datasets)
        acknowledged_jobs.update(hammer.jobs)
        sent, unanswered = sent + hammer.sent, unanswered + hammer.failed
    assert acknowledged_datasets and acknowledged_jobs, "the clients got nothing through before the kills"

    api.start(env)
    assert not list(datasets_dir.glob(".*.tmp")), "cut-off uploads are removed at start"
    with api.client() as client:
        listed = {d["id"]: d for d in client.get("/datasets").json()["datasets"] if not d["builtin"]}
        for dataset_id, (sha256, n_images) in acknowledged_datasets.items():
            assert dataset_id in listed, f"acknowledged upload {dataset_id} is missing"
            assert listed[dataset_id]["n_images"] == n_images
            assert arrays_sha256(datasets_dir / f"{dataset_id}.npz") == sha256, "the stored data is what was sent"
        for dataset_id in listed:  # no record without its complete file, acknowledged or not
            stored = datasets_dir / f"{dataset_id}.npz"
            assert stored.is_file(), f"record {dataset_id} has no file"
            with np.load(stored, allow_pickle=False) as archive:
                assert archive["images"].shape == (listed[dataset_id]["n_images"], 28, 28)
        orphans = [path for path in datasets_dir.glob("*.npz") if path.stem not in listed]

        for job_id, body in acknowledged_jobs.items():
            response = client.get(f"/jobs/{job_id}")
            assert response.status_code == 200, f"acknowledged job {job_id} is missing"
            job = response.json()
            assert job["status"] == "queued" and job["name"] == body["name"]
            assert {key: job["params"][key] for key in body if key != "name"} == \
                   {key: value for key, value in body.items() if key != "name"}
        database = env["ADGM_DATABASE_URL"].removeprefix("sqlite:///")
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored_jobs = connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        listed_jobs = client.get("/jobs", params={"limit": 1000}).json()["jobs"]  # every row reads as a JobPublic
        assert len(listed_jobs) == min(stored_jobs, 1000)
        assert all(set(job["params"]) >= set(SMALL_JOB) for job in listed_jobs), "no half-written job rows"

        # And it serves: a new upload, a new job.
        rng = np.random.default_rng(99)
        assert client.post("/datasets", files={"file": ("after.npz", npz_upload(rng, 50))}).status_code == 201
        assert client.post("/train", json={**SMALL_JOB, "epochs": 1}).status_code == 202
    print("RELIABILITY api-crash", json.dumps({
        "kills": ROUNDS, "writes_sent": sent, "transport_errors": unanswered,
        "uploads_acknowledged": len(acknowledged_datasets), "jobs_acknowledged": len(acknowledged_jobs),
        "acknowledged_lost": 0, "records_without_file": 0, "tmp_files_at_kill": leftovers,
        "unacknowledged_complete_files": len(orphans),
    }))
