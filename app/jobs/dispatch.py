"""Getting queued jobs to workers: Celery when a broker is configured, else embedded processes.

The API never imports `worker`: Celery tasks are sent by name (`store.queue`), and embedded
workers are separate processes started by their entry point, `adgm-worker`.
"""

import logging
import os
import subprocess
import sys
import threading
import time
from importlib.metadata import entry_points

from store.config import Settings
from store.jobs import JobStore
from store.queue import TRAIN_TASK, make_celery, queue_depth

log = logging.getLogger(__name__)

WORKER_ENTRY_POINT = "adgm-worker"
# a new job's own request sends it; the reaper leaves it that long, or it would be sent twice
SEND_GRACE_SECONDS = 5.0


class CeleryDispatcher:
    """Sends each job id to the `gpu` queue; the job store stays the truth about the job."""

    def __init__(self, settings: Settings, store: JobStore):
        self.store = store
        self.celery = make_celery(settings)

    def start(self) -> None:
        pass

    def submit(self, job_id: str) -> bool:
        """False when the broker could not take the message; the reaper sends it again later."""
        try:
            self.celery.send_task(TRAIN_TASK, args=[job_id])
        except Exception as error:  # broker down: the job stays queued in the store
            log.warning("could not send job %s to the broker: %s", job_id, error)
            return False
        self.store.mark_dispatched(job_id)
        return True

    def resend_lost(self, older_than_seconds: float) -> list[str]:
        """Sends the queued jobs that never reached the broker (it was down), and again those it
        lost (it restarted without its queue). The broker cannot say which messages it holds, so
        when it holds fewer than the store has queued jobs, every queued job not sent recently is
        sent again; a duplicate message is harmless because only one worker can claim a job."""
        sent = [job_id for job_id in self.store.undispatched(created_before_seconds=SEND_GRACE_SECONDS)
                if self.submit(job_id)]
        candidates = self.store.undispatched(older_than_seconds, created_before_seconds=SEND_GRACE_SECONDS)
        if candidates and queue_depth(self.celery) < self.store.count_queued():
            sent += [job_id for job_id in candidates if self.submit(job_id)]
        return sent

    def check(self) -> str:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return "ok"

    def supervise(self) -> None:
        pass

    def stop(self) -> None:
        self.celery.close()


def worker_command() -> list[str]:
    """How to start an embedded worker: the module behind the `adgm-worker` entry point."""
    found = entry_points(group="console_scripts", name=WORKER_ENTRY_POINT)
    if not found:
        raise RuntimeError(f"the {WORKER_ENTRY_POINT!r} entry point is not installed: run `pip install -e .`")
    (entry_point,) = found
    return [sys.executable, "-m", entry_point.module, "--wake-stdin"]


class EmbeddedDispatcher:
    """Runs `embedded_workers` training processes next to the API. They poll the job store; a
    byte written to a worker's stdin wakes it at once. Nothing here can block on a worker: the
    pipes are non-blocking, and a dead worker is replaced."""

    STOP_GRACE_SECONDS = 6.0  # then stragglers are killed; the API must be gone within 10 s

    def __init__(self, settings: Settings, store: JobStore):
        self.settings = settings
        self.processes: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._stopping = False

    def _spawn(self) -> subprocess.Popen:
        process = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE, env={**os.environ, **self.settings.as_environment()},
        )
        os.set_blocking(process.stdin.fileno(), False)
        return process

    def start(self) -> None:
        with self._lock:
            self.processes = [self._spawn() for _ in range(self.settings.embedded_workers)]

    def submit(self, job_id: str) -> bool:
        self.supervise()
        with self._lock:
            for process in self.processes:
                _nudge(process)
        return True

    def resend_lost(self, older_than_seconds: float) -> list[str]:
        return []  # embedded workers read the queue from the job store itself

    def check(self) -> str:
        return "not configured"

    def supervise(self) -> None:
        """Replaces embedded workers that died (killed for memory, crashed)."""
        with self._lock:
            if self._stopping:
                return
            for index, process in enumerate(self.processes):
                if process.poll() is not None:
                    log.warning("embedded worker %d exited with %s; starting a new one", process.pid, process.returncode)
                    process.stdin.close()
                    self.processes[index] = self._spawn()

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every worker (a running job goes back to the queue), then waits up to
        `timeout` seconds in all before killing the rest."""
        with self._lock:
            self._stopping = True
            processes = list(self.processes)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("embedded worker %d did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
            process.stdin.close()


def _nudge(process: subprocess.Popen) -> None:
    try:
        os.write(process.stdin.fileno(), b"\n")
    except (BlockingIOError, BrokenPipeError, OSError):  # full: already nudged; broken: it died
        pass


def make_dispatcher(settings: Settings, store: JobStore) -> CeleryDispatcher | EmbeddedDispatcher:
    return EmbeddedDispatcher(settings, store) if settings.embedded else CeleryDispatcher(settings, store)
