"""The artifact store's layout on disk (`ADGM_ARTIFACT_DIR`), shared by the API and every worker.

    models.version                   changes whenever the set of models does (`models_changed`)
    models/<model id>/               a trained model (model.safetensors + model.json, adgm_core.checkpoint)
    models/.<model id>.<r>.partial/  a model being written; renamed into place when complete
    models/.deleted-<model id>/      a model being deleted
    .models.version.<pid>.<r>.tmp    a new models.version, renamed into place when written
    jobs/<job id>/                   a job's resumable training state, while the job is unfinished
    datasets/<dataset id>.npz        an uploaded data set
    datasets/.<dataset id>.<pid>@<host>.npz.tmp
                                     an upload being received or decoded by the API process <pid>
                                     of <host> (its hostname and pid namespace)

Every file appears under its final name complete or not at all (a rename), so a crash leaves
only dot-named leftovers, which `sweep` removes. Several API processes, on one machine or on
several, may share one artifact store: `sweep` removes an upload's staging file when its owner
is a process of this host that no longer runs, or once nobody touched it for longer than a live
owner ever leaves it (a live owner touches its staging files at every heartbeat: `touch_staged`),
which is how the files of an owner on another host, which cannot be asked, go.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from adgm_core.model import ADGM

CHUNK = 1024 * 1024
PARTIAL_MODEL_MAX_AGE_SECONDS = 3600  # a live worker writes a model in seconds; older staging is a leftover
VERSION_STAGING_MAX_AGE_SECONDS = 60  # models.version is renamed into place microseconds after it is written
STAGED_UPLOAD_MAX_AGE_SECONDS = 3600  # a live owner touches its staging files every heartbeat (seconds)
STAGED_UPLOAD = re.compile(r"\.(?P<id>[0-9a-f]{32})(?:\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+))?\.npz\.tmp")


@dataclass(frozen=True)
class Owner:
    """The process that holds a staging file: its pid, and its host as the hostname and the pid
    namespace (two containers may share a hostname and an artifact volume, never a pid namespace)."""

    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(os.getpid(), _this_host())

    def __str__(self) -> str:
        return f"{self.pid}@{self.host}"

    def is_here(self) -> bool:
        """A process of this host (and pid namespace), whose pid tells whether it runs."""
        return self.host == _this_host()

    def runs(self) -> bool:
        """Whether the process of this pid runs (on this host: see `is_here`); a pid taken again
        by another process counts as running, which keeps a file (until it is old), never removes one."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # it runs, as another user
            return True
        return True


def _this_host() -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname()).strip("-") or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc: the hostname alone
        return name
    return f"{name}-{namespace}"


@dataclass
class StagedUpload:
    """An upload received into a staging file; `publish` moves it to its final name."""

    path: Path
    final: Path
    sha256: str
    published: bool = False

    def publish(self) -> None:
        os.replace(self.path, self.final)
        self.published = True

    def discard(self) -> None:
        """Removes the staging file, and the final one if it was published."""
        if self.published:
            self.final.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Artifacts:
    root: Path

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def training_states_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def model_dir(self, model_id: str) -> Path:
        return self.models_dir / model_id

    def training_state_dir(self, job_id: str) -> Path:
        return self.training_states_dir / job_id

    def dataset_path(self, dataset_id: str) -> Path:
        return self.datasets_dir / f"{dataset_id}.npz"

    def create(self) -> None:
        for directory in (self.models_dir, self.training_states_dir, self.datasets_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def publish_model(self, model_id: str, model: ADGM, card: dict) -> str:
        """Writes the model under its id, atomically; returns the weights' sha256."""
        from adgm_core.checkpoint import save_model  # torch: never loaded by a Celery worker's parent

        return save_model(self.model_dir(model_id), model, card)

    def delete_model(self, model_id: str) -> None:
        """Renames the model away first, so no reader ever sees half of it, then removes it."""
        directory = self.model_dir(model_id)
        trash = directory.with_name(f".deleted-{model_id}")
        if directory.exists():
            directory.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    @property
    def models_version_path(self) -> Path:
        return self.root / "models.version"

    def models_changed(self) -> None:
        """Tells every process that shares this store that the job store's set of models changed:
        written after the change's commit (a model published or deleted), so that API processes,
        which keep the answer of which model a request means (app.served_model), ask again."""
        staging = self.root / f".models.version.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        staging.write_text(uuid.uuid4().hex)
        os.replace(staging, self.models_version_path)

    def models_version(self) -> str:
        """The version `models_changed` wrote last ("" before the first change)."""
        try:
            return self.models_version_path.read_text()
        except FileNotFoundError:
            return ""

    def delete_training_state(self, job_id: str) -> None:
        shutil.rmtree(self.training_state_dir(job_id), ignore_errors=True)

    def staged_path(self, dataset_id: str, owner: Owner) -> Path:
        return self.datasets_dir / f".{dataset_id}.{owner}.npz.tmp"

    def stage_dataset(self, dataset_id: str, source: BinaryIO) -> StagedUpload:
        """Copies `source` durably into the staging file of `dataset_id`, owned by this process."""
        upload = StagedUpload(self.staged_path(dataset_id, Owner.this_process()), self.dataset_path(dataset_id), "")
        try:
            upload.sha256 = _copy_durably(source, upload.path)
        except BaseException:
            upload.discard()
            raise
        return upload

    @contextmanager
    def receive_dataset(self, dataset_id: str, source: BinaryIO) -> Iterator[StagedUpload]:
        """Copies `source` durably into a staging file. The caller checks it and calls `publish`;
        if the block then fails (say, recording it did), the published file is removed too."""
        upload = self.stage_dataset(dataset_id, source)
        try:
            yield upload
        except BaseException:
            upload.discard()
            raise
        finally:
            upload.path.unlink(missing_ok=True)

    def delete_dataset(self, dataset_id: str) -> None:
        """Removes an upload's file and its staging files, whoever held them (an upload that failed
        after its owner was lost)."""
        self.dataset_path(dataset_id).unlink(missing_ok=True)
        for staged in self.datasets_dir.glob(f".{dataset_id}.*npz.tmp"):
            staged.unlink(missing_ok=True)

    def touch_staged(self, owner: Owner) -> None:
        """Marks the staging files of `owner` as in use now, so that no `sweep` takes them for leftovers."""
        for path in self.datasets_dir.glob(f".*.{owner}.npz.tmp"):
            try:
                os.utime(path)
            except FileNotFoundError:  # published or discarded meanwhile
                pass

    def sweep(self) -> list[Path]:
        """Removes what crashes leave behind: uploads cut off by the death of their process,
        half-deleted models, and staging abandoned for longer than any live owner leaves it.
        Safe while other processes write to the store: it never removes a live owner's staging
        file, and a file that goes away meanwhile is skipped. Returns what it removed."""
        removed = [path for path in self.datasets_dir.glob(".*.npz.tmp") if _abandoned_upload(path)]
        removed += [path for path in self.root.glob(".models.version.*.tmp")
                    if _untouched_for(path, VERSION_STAGING_MAX_AGE_SECONDS)]
        removed += list(self.models_dir.glob(".deleted-*"))  # being deleted: whoever removes it, it goes
        removed += [path for path in self.models_dir.glob(".*.partial")
                    if _untouched_for(path, PARTIAL_MODEL_MAX_AGE_SECONDS)]
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return removed


def _abandoned_upload(path: Path) -> bool:
    """Its owner is of this host and no longer runs, or nobody touched it for longer than a live owner
    ever leaves it (an owner elsewhere cannot be asked; a pid may have been taken by a new process)."""
    match = STAGED_UPLOAD.fullmatch(path.name)
    if match and match["pid"] and (owner := Owner(int(match["pid"]), match["host"])).is_here() and not owner.runs():
        return True
    return _untouched_for(path, STAGED_UPLOAD_MAX_AGE_SECONDS)


def _untouched_for(path: Path, seconds: float) -> bool:
    """True when `path` was last modified more than `seconds` ago; False when it is gone."""
    try:
        return path.stat().st_mtime < time.time() - seconds
    except FileNotFoundError:  # renamed into place or removed by its owner meanwhile
        return False


def _copy_durably(source: BinaryIO, target: Path) -> str:
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()
