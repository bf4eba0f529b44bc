"""The embedded worker: a process that takes queued jobs from the job store and trains them.

The API starts these (spawn context, so CUDA is never inherited across a fork) when no broker is
configured; `python -m worker.embedded` runs one on its own. A worker asked to stop, or whose
parent API process has died, hands its running job back to the queue; the next worker resumes it
from the last checkpoint.
"""

import logging
import multiprocessing
import os
import signal
import threading

from sqlalchemy.exc import SQLAlchemyError

from app.core.config import Settings
from app.core.db import create_tables, make_engine, make_sessionmaker
from app.jobs.state import JobStore
from worker.training import JobRunner, configure_torch

log = logging.getLogger(__name__)


def serve(settings: Settings, stop, wake) -> None:
    """Runs jobs until `stop` is set; `wake` is set by the API when a job was queued."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(levelname)s %(message)s")
    if settings.embedded_worker_nice:
        os.nice(settings.embedded_worker_nice)
    configure_torch(settings)
    engine = make_engine(settings.database_url)
    create_tables(engine)
    store = JobStore.from_settings(make_sessionmaker(engine), settings)
    runner = JobRunner(settings, store)
    parent = multiprocessing.parent_process()

    def should_exit() -> bool:
        return stop.is_set() or (parent is not None and not parent.is_alive())

    log.info("embedded worker %d ready", os.getpid())
    try:
        while not should_exit():
            try:
                ran = _run_next(store, runner, should_exit)
            except SQLAlchemyError as error:  # the job store is away; try again after a pause
                log.warning("embedded worker cannot reach the job store: %s", error)
                ran = False
            if not ran:
                wake.wait(settings.worker_poll_seconds)
                wake.clear()
    finally:
        engine.dispose()
        log.info("embedded worker %d stopped", os.getpid())


def _run_next(store: JobStore, runner: JobRunner, should_exit) -> bool:
    """Runs the oldest queued job this worker can claim; False when there was none."""
    for job_id in store.queued_ids():
        if should_exit():
            return False
        if runner.run(job_id, should_exit) != "skipped":
            return True
    return False


def main() -> None:
    stop, wake = threading.Event(), threading.Event()

    def request_stop(_signum, _frame):
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    serve(Settings(), stop, wake)


if __name__ == "__main__":
    main()
