"""Real processes to inject faults into, and a reader of the job store they share: redis-server
(restartable on the same port and files, with or without persistence), the API under uvicorn
(restartable on the same port), Celery workers."""

import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import select

from store.db import make_engine, make_sessionmaker
from store.tables import Job, JobProgress, TrainedModel
from process_harness import Process, free_port, port_open, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90

# About a second an epoch on one CPU thread, so kill points are epochs apart.
SMALL_JOB = {"dataset": "digits5k", "labels_per_class": 10, "hidden": [32], "z_dim": 4, "a_dim": 4, "skip": False,
             "batch_size": 100, "learning_rate": 1e-3, "mc_samples": 1}


class RedisServer:
    """A private redis-server; `restart` brings back the same broker (port and directory)."""

    def __init__(self, start_process: Callable[..., Process], directory: Path, persistent: bool):
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        # Persistent: every write is in the append-only file before redis answers it.
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
                "--save", "", *persistence]
        self.process = start_process(f"redis-{self.port}", args, {}, directory)
        self._wait_up()

    def _wait_up(self) -> None:
        wait_for(lambda: port_open(self.port) or not self.process.alive(), 10, "redis-server to listen")
        assert self.process.alive(), self.process.tail()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def restart(self, sig: int = signal.SIGTERM, down_seconds: float = 1.0) -> None:
        """Stops the server (SIGTERM: a clean shutdown; SIGKILL: a crash), keeps it down for
        `down_seconds`, and starts it again."""
        self.process.stop(sig)
        wait_for(lambda: not port_open(self.port), 10, "redis-server to stop")
        time.sleep(down_seconds)
        self.process.start()
        self._wait_up()


class Api:
    """`uvicorn app.main:app` on a fixed port: started again after a kill, it keeps its URL."""

    def __init__(self, start_process: Callable[..., Process], directory: Path):
        self.start_process, self.directory = start_process, directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None
        self.starts = 0

    def start(self, env: dict) -> "Api":
        self.starts += 1
        args = [str(BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = self.start_process(f"api-{self.starts}", args, env, self.directory)
        wait_for(self._healthy, STARTUP_SECONDS, "the API to answer /healthz")
        return self

    def _healthy(self) -> bool:
        assert self.process.alive(), f"the API exited\n{self.process.tail()}"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def client(self, timeout: float = 30, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, **kwargs)


def celery_worker_args(name: str) -> list[str]:
    return [str(BIN / "celery"), "-A", "worker.celery_app", "worker", "-Q", "gpu", "-c", "1", "--pool=prefork",
            "--loglevel=INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]


class JobStoreReader:
    """Reads the job store that the processes share, straight from the database."""

    def __init__(self, database_url: str):
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            return session.get(Job, job_id)

    def progress(self, job_id: str) -> list[tuple[int, int]]:
        """(seq, epoch) of the job's progress rows in the order they were written."""
        with self.sessions() as session:
            query = select(JobProgress.seq, JobProgress.epoch).where(JobProgress.job_id == job_id)
            return [(seq, epoch) for seq, epoch in session.execute(query.order_by(JobProgress.seq))]

    def models_of(self, job_id: str) -> list[TrainedModel]:
        with self.sessions() as session:
            return list(session.scalars(select(TrainedModel).where(TrainedModel.job_id == job_id)))

    def close(self) -> None:
        self.engine.dispose()
