"""Fixtures of the fault-injection tests: real processes (see fault_harness.py), each killed when
its test ends whatever happened, and settings with short fault-detection times."""

import os

import pytest

from fault_harness import REPO_ROOT, Api, JobStoreReader, RedisServer, celery_worker_args


@pytest.fixture
def redis_server(processes, tmp_path):
    """redis_server(persistent) → a RedisServer with its files in tmp_path/redis."""

    def start(persistent: bool) -> RedisServer:
        directory = tmp_path / "redis"
        directory.mkdir(exist_ok=True)
        return RedisServer(processes, directory, persistent)

    return start


@pytest.fixture
def api(processes, tmp_path) -> Api:
    """The API's process (not started: `api.start(env)`)."""
    return Api(processes, tmp_path)


@pytest.fixture
def start_celery_worker(processes, tmp_path):
    """start_celery_worker(env, name) → a `celery -A worker.celery_app worker -Q gpu -c 1` Process."""
    return lambda env, name: processes(name, celery_worker_args(name), env, tmp_path)


@pytest.fixture
def service_env(tmp_path):
    """ADGM_* for processes sharing one SQLite job store and one artifact store under tmp_path,
    with short fault-detection times; nothing of the caller's ADGM_* environment leaks in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ADGM_DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        ADGM_ARTIFACT_DIR=str(tmp_path / "artifacts"),
        ADGM_MNIST_DIR="",
        ADGM_WORKER_TORCH_THREADS="1",
        ADGM_API_TORCH_THREADS="1",
        ADGM_CHECKPOINT_EVERY="1",
        ADGM_HEARTBEAT_SECONDS="0.5",
        ADGM_STALE_AFTER_SECONDS="4",
        ADGM_REAPER_SECONDS="1",
        ADGM_REDISPATCH_AFTER_SECONDS="5",
        ADGM_EVENTS_POLL_SECONDS="0.2",
    )
    return env


@pytest.fixture
def job_store_reader(service_env):
    reader = JobStoreReader(service_env["ADGM_DATABASE_URL"])
    yield reader
    reader.close()
