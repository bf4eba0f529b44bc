"""The API as the serving, footprint and upload benchmarks run it: `uvicorn` in a process of its own
on a temporary SQLite store, with no `ADGM_*` setting of the caller's leaking in, and the figures
that only /proc gives (its CPU time, resident set and peak, whether libtorch is mapped). Also the
models those benchmarks serve, trained on that store by the worker's own job runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 120


def database_url(state: Path) -> str:
    return f"sqlite:///{state / 'adgm.sqlite'}"


def artifact_dir(state: Path) -> Path:
    return state / "artifacts"


def store_settings(state: Path) -> dict[str, str]:
    """The environment naming a store in `state`: its database and artifact directory, no MNIST."""
    return {"ADGM_DATABASE_URL": database_url(state), "ADGM_ARTIFACT_DIR": str(artifact_dir(state)), "ADGM_MNIST_DIR": ""}


def train_models(state: Path, count: int, name: str) -> list[tuple[str, str]]:
    """(job id, model id) of `count` models of the API's default sizes, one epoch of digits5k each
    (seeds 0, 1, ...), trained on the store in `state` as a worker trains a job."""
    from app.schemas import JobCreate
    from store.config import Settings
    from store.db import make_engine, make_sessionmaker
    from store.jobs import JobStore
    from store.schema import migrate
    from store.tables import Job
    from worker.training import JobRunner

    settings = Settings(_env_file=None, database_url=database_url(state), artifact_dir=artifact_dir(state),
                        mnist_dir=None, embedded_workers=0)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = JobStore(make_sessionmaker(engine))
    trained = []
    for seed in range(count):
        params = JobCreate(epochs=1, seed=seed, name=f"{name} {seed}").params()
        job = store.create(params, params["dataset"], params["name"])
        assert JobRunner(settings, store).run(job.id) == "succeeded"
        with store.sessions() as session:
            trained.append((job.id, session.get(Job, job.id).model_id))
    engine.dispose()
    return trained


class ApiProcess:
    """`uvicorn <app_args>` on the store in `state`, serving the code in `code` with `embedded_workers`
    training workers (none: a worker is a process of its own, not the API's memory); returns once
    GET /healthz answers 200 (polled every `poll_seconds`), with `healthy_s` from the launch and
    `healthy_cpu_s`, the process's CPU time by then."""

    def __init__(self, state: Path, port: int, app_args: list[str], code: Path = REPO_ROOT, embedded_workers: int = 0,
                 env: dict[str, str] | None = None, poll_seconds: float = 0.2):
        environment = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
        environment.update(PYTHONPATH=str(code), ADGM_EMBEDDED_WORKERS=str(embedded_workers), **store_settings(state),
                           **(env or {}))
        self.url = f"http://127.0.0.1:{port}"
        try:
            httpx.get(f"{self.url}/healthz", timeout=2)
            raise RuntimeError(f"something already answers on port {port}; choose another with --port")
        except httpx.TransportError:
            pass
        self.log = open(state / f"uvicorn-{port}.log", "ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "uvicorn"), *app_args, "--host", "127.0.0.1", "--port", str(port)],
            env=environment, cwd=state, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start; its log ends:\n{Path(self.log.name).read_text()[-3000:]}")
            time.sleep(poll_seconds)
        self.healthy_s = time.perf_counter() - started
        self.healthy_cpu_s = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the API process so far, all its threads."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _status_mib(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError(f"no {field}")

    def rss_mib(self) -> float:
        return self._status_mib("VmRSS")

    def peak_rss_mib(self) -> float:
        return self._status_mib("VmHWM")

    def torch_loaded(self) -> bool:
        return "libtorch_cpu" in Path(f"/proc/{self.process.pid}/maps").read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
