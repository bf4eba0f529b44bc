"""The embedded worker: a process that takes queued jobs from the job store and trains them.

The API starts these when no broker is configured (`adgm-worker --wake-stdin`, found through its
entry point) and writes a byte to a worker's stdin when a job is queued; the worker also polls the
store every `worker_poll_seconds`, so a lost nudge only delays a job. Nothing the API does can
block on a worker: a dead one just leaves a broken pipe. `adgm-worker` also runs on its own.

SIGTERM or SIGINT stops the worker: a running job goes back to the queue at its next heartbeat and
resumes from its last checkpoint on the next worker. So does the death of the API that started it.
"""

import argparse
import logging
import os
import select
import signal
import sys
import threading

from sqlalchemy.exc import SQLAlchemyError

from store.config import Settings
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.schema import migrate
from store.status import RunOutcome
from worker.training import JobRunner, configure_torch

log = logging.getLogger(__name__)


class Wakeups:
    """Waits for the next poll or nudge. With `stdin`, the API's pipe: a byte is a nudge, and its
    end means the API is gone."""

    def __init__(self, stop: threading.Event, stdin: bool):
        self.stop = stop
        self.fd = sys.stdin.fileno() if stdin else None
        self.parent = os.getppid()

    def parent_gone(self) -> bool:
        return self.fd is not None and os.getppid() != self.parent

    def should_exit(self) -> bool:
        return self.stop.is_set() or self.parent_gone()

    def wait(self, seconds: float) -> None:
        if self.fd is None:
            self.stop.wait(seconds)
            return
        readable, _, _ = select.select([self.fd], [], [], seconds)
        if readable and not os.read(self.fd, 4096):
            self.stop.set()  # end of file: the API closed its end or died


def serve(settings: Settings, wakeups: Wakeups) -> None:
    """Runs jobs until `wakeups.should_exit()`."""
    if settings.embedded_worker_nice:
        os.nice(settings.embedded_worker_nice)
    configure_torch(settings)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = JobStore.from_settings(make_sessionmaker(engine), settings)
    runner = JobRunner(settings, store)
    log.info("embedded worker %d ready", os.getpid())
    try:
        while not wakeups.should_exit():
            try:
                ran = _run_next(store, runner, wakeups.should_exit)
            except SQLAlchemyError as error:  # the job store is away; try again after a pause
                log.warning("embedded worker cannot reach the job store: %s", error)
                ran = False
            if not ran:
                wakeups.wait(settings.worker_poll_seconds)
    finally:
        engine.dispose()
        log.info("embedded worker %d stopped", os.getpid())


def _run_next(store: JobStore, runner: JobRunner, should_exit) -> bool:
    """Runs the oldest queued job this worker can claim; False when there was none."""
    for job_id in store.queued_ids():
        if should_exit():
            return False
        if runner.run(job_id, should_exit) != RunOutcome.SKIPPED:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description="Train queued jobs from the job store (ADGM_* settings).")
    parser.add_argument("--wake-stdin", action="store_true", help="read nudges from stdin; exit at its end")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    serve(Settings(), Wakeups(stop, stdin=args.wake_stdin))


if __name__ == "__main__":
    main()
