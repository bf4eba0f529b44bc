"""Getting queued jobs to workers: Celery when a broker is configured, else embedded processes."""

import logging
import multiprocessing

from app.core.config import Settings
from app.jobs.state import JobStore

log = logging.getLogger(__name__)


class CeleryDispatcher:
    """Sends each job id to the `gpu` queue; the job store stays the truth about the job."""

    def __init__(self, settings: Settings, store: JobStore):
        from worker.celery_app import make_celery  # no torch here: the task imports it in the worker

        self.store = store
        self.celery = make_celery(settings)

    def start(self) -> None:
        pass

    def submit(self, job_id: str) -> bool:
        """False when the broker could not take the message; the reaper sends it again later."""
        from worker.celery_app import TRAIN_TASK

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
        from worker.celery_app import queue_depth

        sent = [job_id for job_id in self.store.undispatched() if self.submit(job_id)]
        candidates = self.store.undispatched(older_than_seconds)
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


class EmbeddedDispatcher:
    """Runs `embedded_workers` training processes next to the API; they poll the job store."""

    def __init__(self, settings: Settings, store: JobStore):
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.stop_event = self.context.Event()
        self.wake = self.context.Event()
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def _spawn(self, index: int):
        from worker.embedded import serve

        process = self.context.Process(
            target=serve, args=(self.settings, self.stop_event, self.wake),
            name=f"adgm-embedded-worker-{index}", daemon=True,
        )
        process.start()
        return process

    def start(self) -> None:
        self.processes = [self._spawn(index) for index in range(self.settings.embedded_workers)]

    def submit(self, job_id: str) -> bool:
        self.wake.set()
        return True

    def resend_lost(self, older_than_seconds: float) -> list[str]:
        return []  # embedded workers read the queue from the job store itself

    def check(self) -> str:
        return "not configured"

    def supervise(self) -> None:
        """Restarts embedded workers that died (killed for memory, crashed)."""
        if self.stop_event.is_set():
            return
        for index, process in enumerate(self.processes):
            if not process.is_alive():
                log.warning("embedded worker %s exited with %s; starting a new one", process.name, process.exitcode)
                self.processes[index] = self._spawn(index)

    def stop(self, timeout: float = 30.0) -> None:
        """Asks the workers to stop (a running job goes back to the queue) and waits for them."""
        self.stop_event.set()
        self.wake.set()
        for process in self.processes:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(5)


def make_dispatcher(settings: Settings, store: JobStore) -> CeleryDispatcher | EmbeddedDispatcher:
    return EmbeddedDispatcher(settings, store) if settings.embedded else CeleryDispatcher(settings, store)
