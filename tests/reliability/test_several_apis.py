"""Several API processes on one store (`uvicorn --workers N`, or replicas behind a proxy): one job
store and one artifact directory, each process with its own embedded training worker, upload
processor, reaper and sweep.

- Two real APIs started at once on one SQLite store, and on one PostgreSQL store, take concurrent
  uploads (small ones stored in the request, zips decoded in the background) and training jobs,
  some on an upload received by the other process: every acknowledged upload is one data-set row
  with its complete file, every job is claimed once, trained once and has one model, and no
  staging file or row is left over.
- A second API started while the first holds uploads mid-way (queued or being decoded) leaves their
  staging files alone, and the uploads are stored whole; once the first is killed, the second
  sweeps what it left.
"""

import io
import json
import os
import re
import signal
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from fault_harness import BIN, STARTUP_SECONDS, SMALL_JOB, JobStoreReader
from process_harness import free_port, wait_for, wait_until_healthy
from store.status import JobStatus
from store.tables import Dataset, Job, JobProgress, LabelEntry, TrainedModel, Upload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BACKGROUND_IMAGES = 40  # zips of more images than this are decoded in the background
TINY_JOB = {**SMALL_JOB, "epochs": 1}
ROUNDS = 1  # of each client: a small upload, a big one, a job on digits5k and one on the shared upload


def npz_upload(seed: int, n_images: int = 30) -> bytes:
    """A data set stored in the request: random 28×28 images, the first 20 labelled (two per class)."""
    rng = np.random.default_rng(seed)
    labels = np.full(n_images, -1, np.int64)
    labels[:20] = np.arange(20) % 10
    buffer = io.BytesIO()
    np.savez(buffer, images=rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8), labels=labels)
    return buffer.getvalue()


def zip_upload(seed: int, n_images: int) -> bytes:
    """A zip of class folders (two PNGs each) and `unlabelled/`: decoded in the background."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(n_images):
            png = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(png, "PNG")
            folder = str(i % 10) if i < 20 else "unlabelled"
            archive.writestr(f"{folder}/{i}.png", png.getvalue())
    return buffer.getvalue()


def start_apis(processes, tmp_path, env: dict, names: list[str]) -> dict[str, tuple[str, object]]:
    """Starts one uvicorn per name, all at once (they migrate and sweep the store together), and
    waits until each answers; name → (URL, Process)."""
    started = {}
    for name in names:
        port = free_port()
        args = [str(BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        started[name] = (f"http://127.0.0.1:{port}", processes(name, args, env, tmp_path))
    for url, process in started.values():
        wait_until_healthy(process, f"{url}/healthz", STARTUP_SECONDS)
    return started


def staging_files(artifact_dir: str) -> list[Path]:
    return sorted((Path(artifact_dir) / "datasets").glob(".*.tmp"))


def count(reader: JobStoreReader, query) -> int:
    with reader.sessions() as session:
        return session.scalar(query)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_env(request, service_env) -> dict:
    env = {**service_env, "ADGM_EMBEDDED_WORKERS": "1", "ADGM_UPLOAD_BACKGROUND_IMAGES": str(BACKGROUND_IMAGES),
           "ADGM_MAX_QUEUED_JOBS": "1000", "ADGM_EMBEDDED_WORKER_NICE": "0",
           "ADGM_STALE_AFTER_SECONDS": "60"}  # four processes on one core: no heartbeat is missed for slowness
    if request.param == "postgresql":
        env["ADGM_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return env


def test_two_apis_share_one_store_under_concurrent_uploads_and_training(processes, tmp_path, shared_env):
    env = shared_env
    apis = start_apis(processes, tmp_path, env, ["api-a", "api-b"])
    clients = {name: httpx.Client(base_url=url, timeout=60) for name, (url, _process) in apis.items()}
    reader = JobStoreReader(env["ADGM_DATABASE_URL"])
    try:
        # A data set received by A, trained on through B.
        first = clients["api-a"].post("/datasets", files={"file": ("first.npz", npz_upload(0))})
        assert first.status_code == 201, first.text
        shared_dataset = first.json()["id"]

        uploads: dict[str, str] = {shared_dataset: "api-a"}  # acknowledged upload id → the API that took it
        jobs: dict[str, str] = {}
        unexpected: list[str] = []
        lock = threading.Lock()

        on_upload_job = {**{k: v for k, v in TINY_JOB.items() if k != "labels_per_class"}, "dataset": shared_dataset}

        def client_of(name: str, seed: int) -> None:
            client = clients[name]
            for round_ in range(ROUNDS):
                n = 1 + seed * 10 + round_
                small = client.post("/datasets", files={"file": (f"s{n}.npz", npz_upload(n))})
                big = client.post("/datasets", files={"file": (f"b{n}.zip", zip_upload(n, 60))})
                on_builtin = client.post("/train", json=TINY_JOB)
                on_upload = client.post("/train", json=on_upload_job)
                with lock:
                    for response, expected in ((small, 201), (big, 202), (on_builtin, 202), (on_upload, 202)):
                        if response.status_code != expected:
                            unexpected.append(f"{name}: {response.status_code} {response.text}")
                        elif response.request.url.path == "/train":
                            jobs[response.json()["id"]] = name
                        else:
                            uploads[response.json()["id"]] = name

        threads = [threading.Thread(target=client_of, args=(name, seed)) for seed, name in enumerate(apis)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert unexpected == []
        assert len(uploads) == 1 + 2 * len(apis) * ROUNDS and len(jobs) == 2 * len(apis) * ROUNDS

        def finished() -> bool:
            unfinished = Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
            with reader.sessions() as session:
                waiting = session.scalar(select(func.count()).select_from(Job).where(unfinished))
                decoding = session.scalar(select(func.count()).select_from(Upload).where(
                    Upload.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])))
            return waiting == 0 and decoding == 0

        wait_for(finished, 180, "every job and background upload to finish")
        for name, (url, process) in apis.items():
            assert process.alive(), process.tail()

        # Every upload: one row, its complete file, the same answer from both processes.
        artifacts = Path(env["ADGM_ARTIFACT_DIR"])
        for upload_id, taken_by in uploads.items():
            for client in clients.values():
                answer = client.get(f"/datasets/{upload_id}")
                assert answer.status_code == 200, (upload_id, taken_by, answer.text)
                assert answer.json()["n_images"] in (30, 60) and answer.json()["n_labelled"] == 20
            with np.load(artifacts / "datasets" / f"{upload_id}.npz") as stored:
                assert stored["images"].shape[0] in (30, 60)
        assert count(reader, select(func.count()).select_from(Dataset)) == len(uploads)
        assert count(reader, select(func.count(func.distinct(Dataset.id)))) == len(uploads)
        assert count(reader, select(func.count()).select_from(LabelEntry)) == 20 * len(uploads)
        assert sorted(p.name for p in (artifacts / "datasets").iterdir()) == sorted(f"{i}.npz" for i in uploads)
        assert staging_files(env["ADGM_ARTIFACT_DIR"]) == []

        # Every job: claimed once, trained once (one progress row per epoch), one model, its files.
        with reader.sessions() as session:
            rows = {job.id: job for job in session.scalars(select(Job))}
            models = list(session.scalars(select(TrainedModel)))
            progress = session.execute(select(JobProgress.job_id, JobProgress.epoch)).all()
        assert set(rows) == set(jobs)
        for job_id, job in rows.items():
            assert job.status == JobStatus.SUCCEEDED and job.attempts == 1, (job_id, job.status, job.error)
        assert sorted(model.job_id for model in models) == sorted(jobs)
        assert {rows[model.job_id].model_id for model in models} == {model.id for model in models}
        assert sorted(job_id for job_id, _epoch in progress) == sorted(jobs)
        assert sorted(p.name for p in (artifacts / "models").iterdir()) == sorted(model.id for model in models)
        assert list((artifacts / "jobs").iterdir()) == []  # no training state left behind
        served = [client.get("/models").json() for client in clients.values()]
        assert served[0] == served[1] and len(served[0]["models"]) == len(jobs)
        trained_by = {name: len(re.findall(r"INFO job [0-9a-f]{32}: succeeded", process.text()))
                      for name, (_url, process) in apis.items()}  # its embedded worker's log lines
        print("RELIABILITY several-apis", json.dumps({
            "database": env["ADGM_DATABASE_URL"].split(":")[0], "uploads_acknowledged": len(uploads),
            "background_uploads": sum(1 for i in uploads if count(reader, select(func.count()).select_from(Upload)
                                                                  .where(Upload.id == i))),
            "jobs": len(jobs), "jobs_trained_by_each_api_worker": trained_by, "rows_duplicated": 0, "files_lost": 0,
        }))
        for _url, process in apis.values():  # both stop cleanly, side by side
            process.popen.send_signal(signal.SIGTERM)
        for _url, process in apis.values():
            assert process.popen.wait(30) in (0, -signal.SIGTERM), process.tail()  # uvicorn re-raises the signal
    finally:
        for client in clients.values():
            client.close()
        reader.close()


def test_a_second_api_leaves_the_first_apis_uploads_in_progress_alone_until_it_dies(processes, tmp_path, service_env):
    """The first API is frozen (SIGSTOP) while it holds two big uploads, one being decoded and one
    waiting, so that they are certainly in progress while the second API starts and sweeps."""
    env = {**service_env, "ADGM_EMBEDDED_WORKERS": "0", "ADGM_UPLOAD_BACKGROUND_IMAGES": str(BACKGROUND_IMAGES),
           "ADGM_STALE_AFTER_SECONDS": "60"}  # frozen for seconds, the first is not taken for dead
    (first_url, first), = start_apis(processes, tmp_path, env, ["api-first"]).values()
    with httpx.Client(base_url=first_url, timeout=60) as client:
        sent = [client.post("/datasets", files={"file": (f"u{n}.zip", zip_upload(n, n_images))})
                for n, n_images in enumerate((1500, 100))]
    os.kill(first.popen.pid, signal.SIGSTOP)
    try:
        assert [response.status_code for response in sent] == [202, 202], [r.text for r in sent]
        held = staging_files(env["ADGM_ARTIFACT_DIR"])
        assert held, "the first API holds staging files while it decodes"
        (second_url, second), = start_apis(processes, tmp_path, env, ["api-second"]).values()
        time.sleep(3 * float(env["ADGM_REAPER_SECONDS"]))  # and its reaper's sweeps
        assert staging_files(env["ADGM_ARTIFACT_DIR"]) == held, second.tail()
    finally:
        os.kill(first.popen.pid, signal.SIGCONT)

    with httpx.Client(base_url=second_url, timeout=60) as client:  # any process reads any upload
        for response in sent:
            url = response.json()["url"]
            done = wait_for(lambda: (body := client.get(url).json())["status"] in ("succeeded", "failed") and body,
                            120, "the first API's uploads to finish")
            assert done["status"] == "succeeded", done
            assert done["dataset"]["n_images"] == response.json()["n_images"]
    assert staging_files(env["ADGM_ARTIFACT_DIR"]) == []
    assert first.alive() and second.alive()

    # Killed with uploads in progress, the first API leaves staging files that the second's reaper
    # sweeps without a restart (a process of this host that no longer runs). It is frozen first, so
    # that what it holds then is certainly in progress at its death: the first upload may have
    # finished before (it then stays, complete), the second waits behind it.
    with httpx.Client(base_url=first_url, timeout=60) as client:
        cut_off = [client.post("/datasets", files={"file": (f"c{n}.zip", zip_upload(10 + n, 1500))}).json()["id"]
                   for n in range(2)]
    os.killpg(first.popen.pid, signal.SIGSTOP)
    in_progress = [upload_id for upload_id in cut_off
                   if any(upload_id in path.name for path in staging_files(env["ADGM_ARTIFACT_DIR"]))]
    assert in_progress, "the first API holds the uploads it was acknowledging"
    first.kill_group()
    wait_for(lambda: staging_files(env["ADGM_ARTIFACT_DIR"]) == [], 30, "the second API to sweep the dead one's files")
    assert not [path for path in (Path(env["ADGM_ARTIFACT_DIR"]) / "datasets").iterdir()
                if any(upload_id in path.name for upload_id in in_progress)]
    assert second.alive(), second.tail()
