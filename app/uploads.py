"""Storing an upload as a data set, now or in the background.

A zip of more than `ADGM_UPLOAD_BACKGROUND_IMAGES` images takes about a millisecond of CPU per
image to decode and preprocess, too long for one request. Its layout is checked in the request
(mistakes still get their 4xx at once); then `UploadProcessor`, a thread of the API process,
decodes its images one upload at a time, records progress in the upload's row (store.uploads) and
beats its heartbeat, and at the end stores the data set exactly as a small upload is stored: the
canonical .npz renamed into place, then its record and first labels in the transaction that
marks the upload succeeded. A failure, a stop of the server or the loss of the upload to a
reaper (the process went silent) removes its files; an upload whose process died is failed by
`reap`, which any API process runs, and its files removed.
"""

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from adgm_core.data import DataError, ImageSet
from adgm_core.data.uploads import Upload as DecodedUpload
from adgm_core.data.uploads import UploadPlan
from store.artifacts import Owner, StagedUpload
from store.config import Settings
from store.db import utcnow
from store.ids import new_id
from store.tables import Dataset
from store.uploads import OWNER_LOST, UploadStore

log = logging.getLogger(__name__)

UPLOAD_AUTHOR = "upload"
PROGRESS_SECONDS = 0.5  # how often a decoding upload writes its progress


class UploadStopped(Exception):
    """The server is stopping, or the upload was taken from this process."""


def write_npz(path: Path, train: ImageSet, test: ImageSet | None) -> None:
    """The upload, whatever its format, as the one .npz that `load_npz` reads (over the staged file)."""
    arrays = dict(images=train.images, labels=train.labels, n_classes=np.int64(train.n_classes))
    if test is not None:
        arrays.update(test_images=test.images, test_labels=test.labels)
    with open(path, "wb") as out:
        np.savez_compressed(out, **arrays)
        out.flush()
        os.fsync(out.fileno())


def dataset_record(dataset_id: str, name: str, sha256: str, loaded: DecodedUpload) -> tuple[Dataset, list[dict]]:
    """The data set's row, and the rows of its labels as the label log's version 1."""
    train, test = loaded.train, loaded.test
    labelled = np.flatnonzero(train.labels >= 0)
    now = utcnow()
    record = Dataset(
        id=dataset_id, name=name, sha256=sha256, created_at=now, n_test_images=0 if test is None else len(test.images),
        class_names=loaded.class_names, version=1 if len(labelled) else 0, n_images=len(train.images),
        n_labelled=len(labelled), n_classes=train.n_classes, image_shape=[int(side) for side in train.image_shape],
    )
    labels = [dict(dataset_id=dataset_id, version=1, image_index=int(i), label=int(train.labels[i]), old_label=None,
                   author=UPLOAD_AUTHOR, created_at=now) for i in labelled]
    return record, labels


@dataclass(frozen=True)
class PendingUpload:
    id: str
    name: str
    staged: StagedUpload  # the zip as received; the .npz is written over it
    plan: UploadPlan


class UploadProcessor:
    """Decodes big uploads in a thread of the API process, one at a time, oldest first."""

    def __init__(self, settings: Settings, sessions: sessionmaker):
        self.settings = settings
        self.store = UploadStore(sessions, settings.stale_after_seconds)
        self.owner = new_id()
        self._queue: queue.Queue[PendingUpload | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, name="adgm-uploads", daemon=True),
                         threading.Thread(target=self._beat, name="adgm-uploads-heartbeat", daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Fails the upload being decoded and those waiting (their files removed)."""
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

    def submit(self, pending: PendingUpload) -> None:
        """Records the upload as queued and hands it (and its staged file) to the decoding thread."""
        try:
            self.store.create(pending.id, pending.name, pending.plan.images_to_decode, pending.plan.skipped,
                              self.owner)
        except BaseException:
            pending.staged.discard()
            raise
        self._queue.put(pending)

    def reap(self) -> list[str]:
        """Fails the uploads whose process went silent and removes their files; their ids."""
        failed = self.store.fail_stale()
        for upload_id in failed:
            self.settings.artifacts.delete_dataset(upload_id)
            log.warning("upload %s lost the process decoding it; failed and removed", upload_id)
        return failed

    def _work(self) -> None:
        while (pending := self._queue.get()) is not None:
            if self._stop.is_set():
                self._fail(pending, OWNER_LOST)
            else:
                self._process(pending)
        while not self._queue.empty():  # stopped: what still waits will not be decoded
            if (pending := self._queue.get_nowait()) is not None:
                self._fail(pending, OWNER_LOST)

    def _process(self, pending: PendingUpload) -> None:
        if not self.store.start(pending.id, self.owner):
            pending.staged.discard()
            return
        written = time.monotonic()

        def progress(done: int, total: int) -> None:
            nonlocal written
            if self._stop.is_set():
                raise UploadStopped(OWNER_LOST)
            if time.monotonic() - written >= PROGRESS_SECONDS:
                written = time.monotonic()
                if not self.store.progress(pending.id, self.owner, done):
                    raise UploadStopped("taken from this process")

        try:
            loaded = pending.plan.load(progress)
            write_npz(pending.staged.path, loaded.train, loaded.test)
            pending.staged.publish()
            record, labels = dataset_record(pending.id, pending.name, pending.staged.sha256, loaded)
            if self.store.succeed(pending.id, self.owner, record, labels, loaded.skipped):
                log.info("upload %s stored: %d images", pending.id, len(loaded.train))
            else:
                pending.staged.discard()
        except UploadStopped as stopped:
            self._fail(pending, str(stopped))
        except DataError as error:
            self._fail(pending, str(error))
        except Exception as error:  # anything else fails this upload, never the thread
            log.exception("upload %s failed", pending.id)
            self._fail(pending, f"the upload could not be stored ({type(error).__name__}: {error})")

    def _fail(self, pending: PendingUpload, error: str) -> None:
        pending.staged.discard()
        try:
            self.store.fail(pending.id, self.owner, error)
        except SQLAlchemyError as failure:  # the row stays unfinished; a reaper fails it once it is stale
            log.warning("upload %s: its failure was not recorded: %s", pending.id, failure)

    def _beat(self) -> None:
        """Beats this process's uploads in the job store and touches its staging files, so that
        neither another process's reaper nor its `sweep` takes them for a dead process's."""
        files = Owner.this_process()
        while not self._stop.wait(self.settings.heartbeat_seconds):
            self.settings.artifacts.touch_staged(files)
            try:
                self.store.beat(self.owner)
            except SQLAlchemyError as error:  # the next beat retries
                log.warning("heartbeat of uploads failed: %s", error)
