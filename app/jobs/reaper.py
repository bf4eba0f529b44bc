"""The reaper: a thread in the API that keeps jobs moving when workers or the broker fail.

Every `reaper_seconds` it re-queues running jobs whose heartbeat went stale (their worker died)
and sends them again, sends again queued jobs that the broker lost, restarts dead embedded
workers, fails uploads whose API process died while decoding them (removing their files), and
sweeps the artifact store of what stopped processes left (store.artifacts: never a live owner's
file). Every change is a conditional update, so several API processes may reap at once.
"""

import logging
import threading

from app.uploads import UploadProcessor
from store.config import Settings
from store.jobs import JobStore

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, settings: Settings, store: JobStore, dispatcher, uploads: UploadProcessor):
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher
        self.uploads = uploads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="adgm-reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.reaper_seconds):
            try:
                self.reap()
            except Exception as error:  # a database or broker outage must not kill the reaper
                log.warning("reaper pass failed: %s", error)

    def reap(self) -> None:
        self.dispatcher.supervise()
        for job_id in self.store.requeue_stale():
            log.warning("job %s lost its worker; re-queued", job_id)
            self.dispatcher.submit(job_id)
        for job_id in self.dispatcher.resend_lost(self.settings.redispatch_after_seconds):
            log.warning("job %s was not in the broker's queue; sent again", job_id)
        self.uploads.reap()
        for leftover in self.settings.artifacts.sweep():
            log.info("removed %s, left behind by a process that stopped", leftover.name)
