"""Real processes for the integration tests: the API under uvicorn, Celery workers, redis-server
(from tests/conftest.py). Every process is killed when its test ends, whatever happened."""

import os
import sys
from pathlib import Path

import pytest

from process_harness import Process, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90


@pytest.fixture
def service_env(tmp_path, mnist_dir):
    """ADGM_* for processes sharing one job store and artifact store under tmp_path; nothing of
    the caller's ADGM_* environment leaks in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ADGM_DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        ADGM_ARTIFACT_DIR=str(tmp_path / "artifacts"),
        ADGM_MNIST_DIR=str(mnist_dir),
        ADGM_WORKER_TORCH_THREADS="1",
        ADGM_HEARTBEAT_SECONDS="0.5",
        ADGM_EVENTS_POLL_SECONDS="0.2",
    )
    return env


@pytest.fixture
def start_api(processes, tmp_path, unused_port):
    """start_api(env) → the base URL of `uvicorn app.main:app`, once it answers /healthz; on the
    test's port (a restart comes back on it), or on `port` for a second process beside it."""

    def start(env: dict, name: str = "api", port: int | None = None) -> tuple[str, Process]:
        port = port or unused_port
        url = f"http://127.0.0.1:{port}"
        process = processes(
            name, [str(BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env, tmp_path,
        )
        wait_until_healthy(process, f"{url}/healthz", STARTUP_SECONDS)
        return url, process

    return start


@pytest.fixture
def start_celery_worker(processes, tmp_path):
    """start_celery_worker(env, name) → a `celery -A worker.celery_app worker -Q gpu -c 1` process."""

    def start(env: dict, name: str = "worker1") -> Process:
        args = [str(BIN / "celery"), "-A", "worker.celery_app", "worker", "-Q", "gpu", "-c", "1",
                "--pool=prefork", "--loglevel=INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
        return processes(name, args, env, tmp_path)

    return start
