"""Fixtures shared by the service's tests: settings on temporary state, one real trained model per
session, a private redis-server, and a private schema on a PostgreSQL server (the local one, or a
throwaway one started for the session when none answers).

Under CI=true a skipped test fails, unless it is in ALLOWED_SKIPS with its reason."""

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adgm_core.data import load_builtin, load_mnist
from store.config import Settings
from store.db import make_engine, make_sessionmaker
from store.schema import migrate
from store.jobs import JobStore
from app.main import create_app
from image_files import encode as encode_image
from process_harness import Process, free_port, port_open

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_SERVER = os.environ.get("ADGM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

# A model small enough to train on the CPU in seconds; the flow matters here, not the accuracy.
TINY_JOB = {
    "dataset": "digits5k", "labels_per_class": 10, "epochs": 2, "hidden": [32], "z_dim": 4, "a_dim": 4,
    "skip": False, "learning_rate": 1e-3, "batch_size": 100, "mc_samples": 1, "seed": 0, "name": "tiny",
}


def make_test_settings(state_dir: Path, **overrides) -> Settings:
    """Settings that read nothing from the environment or a .env file, state under `state_dir`."""
    values = dict(
        database_url=f"sqlite:///{state_dir / 'adgm.sqlite'}", artifact_dir=state_dir / "artifacts",
        broker_url=None, api_key=None, mnist_dir=None, embedded_workers=0, api_torch_threads=2,
        worker_torch_threads=None, embedded_worker_nice=0, heartbeat_seconds=0.2, events_poll_seconds=0.05,
        checkpoint_every=1, worker_poll_seconds=0.2,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    return free_port()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The four MNIST IDX files: $ADGM_MNIST_DIR, else ../shared/data/mnist from the repository root."""
    directory = Path(os.environ.get("ADGM_MNIST_DIR", REPO_ROOT / ".." / "shared" / "data" / "mnist"))
    if not directory.is_dir():
        pytest.fail(f"MNIST IDX files not found in {directory}; set ADGM_MNIST_DIR to their directory")
    return directory.resolve()


@dataclass(frozen=True)
class TrainedState:
    """A job store and artifact store holding one succeeded job and its model."""

    directory: Path
    job_id: str
    model_id: str

    def copy_to(self, state_dir: Path) -> None:
        """A fresh copy of the job store and artifacts in `state_dir` (which must not exist yet)."""
        shutil.copytree(self.directory, state_dir, ignore=shutil.ignore_patterns("*-wal", "*-shm"))


@pytest.fixture(scope="session")
def trained_state(tmp_path_factory) -> TrainedState:
    """Trains one tiny model for real (digits5k, 2 epochs) through the worker's own code path."""
    from store.tables import Job
    from worker.training import JobRunner

    directory = tmp_path_factory.mktemp("trained")
    settings = make_test_settings(directory)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = JobStore(make_sessionmaker(engine))
    job = store.create(dict(TINY_JOB), TINY_JOB["dataset"], TINY_JOB["name"])
    assert JobRunner(settings, store).run(job.id) == "succeeded"
    with store.sessions() as session:
        model_id = session.get(Job, job.id).model_id
    engine.dispose()
    return TrainedState(directory, job.id, model_id)


@pytest.fixture
def make_settings(tmp_path):
    """make_settings(trained=None, **overrides): settings on fresh state in tmp_path, starting
    from a copy of `trained` (job store and artifacts) when given."""

    def make(trained: TrainedState | None = None, **overrides) -> Settings:
        state = tmp_path / "state"
        if trained is not None:
            trained.copy_to(state)
        state.mkdir(exist_ok=True)
        return make_test_settings(state, **overrides)

    return make


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of this test's own on a free port, without persistence."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed (Debian package redis-server); scripts/install.sh --test installs it")
    port = free_port()
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(timeout=10)


# Tests that may skip under CI=true, each with why: none today. A GPU-only test would be listed here.
ALLOWED_SKIPS: dict[str, str] = {}

LONG_FIRST = ("slow", "browser", "integration")  # markers, longest first


def pytest_collection_modifyitems(items):
    """The files of long tests first, so that xdist's workers, which take a file at a time in this
    order, do not end with one of them training alone."""
    rank = {}
    for item in items:
        marks = [LONG_FIRST.index(m.name) for m in item.iter_markers() if m.name in LONG_FIRST]
        rank[item.path] = min([rank.get(item.path, len(LONG_FIRST)), *marks])
    items.sort(key=lambda item: rank[item.path])


def pytest_configure(config):
    """Under pytest-xdist (scripts/test.sh: a test file to a worker), a worker's torch and the
    processes its tests start take the worker's share of the cores: threads of several trainings
    spinning on the same cores slow each other down tenfold."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        share = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(share)
        torch.set_num_threads(share)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure unless the test is in ALLOWED_SKIPS: a missing server or
    browser must not pass silently."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        if not any(item.nodeid.startswith(allowed) for allowed in ALLOWED_SKIPS):
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true, and not in ALLOWED_SKIPS (tests/conftest.py): {report.longrepr}"


def _answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server: the local one when it answers, else a throwaway server of
    Debian's `postgresql` package, made by initdb in a temporary directory on a free port."""
    if _answers(POSTGRES_SERVER):
        yield POSTGRES_SERVER
        return
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not binaries:
        pytest.fail("no PostgreSQL answers on 127.0.0.1:5432 and initdb is missing: install Debian's "
                    "postgresql package (scripts/install.sh --test does)")
    bin_dir = binaries[-1].parent
    directory = Path(tempfile.mkdtemp(prefix="adgm-postgres-"))  # not under pytest's root-only tmp
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(directory, "postgres")
    data, port = directory / "data", free_port()
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True)
    server = subprocess.Popen(
        [*run_as, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-k", str(directory), "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the throwaway PostgreSQL server did not start")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A URL whose connections live in a schema of their own on the PostgreSQL server, dropped
    afterwards."""
    import psycopg

    schema = f"adgm_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(postgres_server, autocommit=True, connect_timeout=3)
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{postgres_server}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def start_client():
    """start_client(settings) → a TestClient whose app (lifespan included) runs until the test ends."""
    clients = []

    def start(settings) -> TestClient:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def processes():
    """processes(name, args, env, directory) → a started Process; all are killed after the test."""
    started: list[Process] = []

    def start(name, args, env, directory) -> Process:
        process = Process(name, args, env, directory)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop(timeout=30)


@pytest.fixture(scope="session")
def encode():
    """encode(uint8 array or PIL image, format="PNG", **options) → the file's bytes."""
    return encode_image


@pytest.fixture(scope="session")
def test_digits():
    """(images uint8 N×28×28, labels) of the offline set's test split: real handwritten digits."""
    _train, test = load_builtin("digits5k")
    return test.images, test.labels


@pytest.fixture(scope="session")
def bench_judge():
    """bench/judge.py as a module (bench/ is a directory of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_judge", REPO_ROOT / "bench" / "judge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def judge(bench_judge, mnist_dir):
    """The independent CNN trained on all 60,000 labelled MNIST images (about a minute on 2 cores;
    cached in bench/.cache)."""
    return bench_judge.load_judge(load_mnist(mnist_dir)[0])


@pytest.fixture
def fake_cpu(monkeypatch):
    """fake_cpu(*flags): adgm_core.cpu reads a CPU named "Fake CPU" with these flags, not this machine's."""
    from adgm_core import cpu

    def fake(*flags: str) -> None:
        monkeypatch.setattr(cpu, "cpu_info", lambda: cpu.CpuInfo("Fake CPU", frozenset(flags)))

    return fake
