"""Starts the real service for the browser tests (and tests/browser/take_screenshot.py).

The server runs in embedded mode (no broker), with its SQLite job store and artifacts in a given
directory, as `uvicorn app.main:app` in a subprocess on a free port.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SMALL_PRESET = {"hidden": [64], "z_dim": 16, "a_dim": 16}
STARTUP_SECONDS = 90
TRAINING_SECONDS = 180


def launch_chromium(playwright):
    """Debian's Chromium (a Playwright browser download does not work here), headless."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(directory: Path, **settings: str) -> Iterator[str]:
    """Starts `uvicorn app.main:app` on a free port with its state in `directory`; yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
    env.update(
        ADGM_DATABASE_URL=f"sqlite:///{directory / 'jobs.sqlite'}",
        ADGM_ARTIFACT_DIR=str(directory / "artifacts"),
        ADGM_WORKER_TORCH_THREADS="1",
        **{f"ADGM_{name.upper()}": value for name, value in settings.items()},
    )
    if "ADGM_MNIST_DIR" in os.environ:
        env["ADGM_MNIST_DIR"] = os.environ["ADGM_MNIST_DIR"]
    log_path = directory / "server.log"
    uvicorn = Path(sys.executable).with_name("uvicorn")
    with open(log_path, "wb") as log:
        # cwd is the temporary directory, so no stray .env of the checkout is read.
        process = subprocess.Popen(
            [str(uvicorn), "app.main:app", "--app-dir", str(REPO_ROOT), "--host", "127.0.0.1", "--port", str(port)],
            cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /healthz:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_job(url: str, job_id: str, headers: dict | None = None) -> dict:
    """Polls GET /jobs/{id} until the job has ended; returns its JobPublic."""
    deadline = time.monotonic() + TRAINING_SECONDS
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise RuntimeError(f"job {job_id} did not end within {TRAINING_SECONDS} s")
