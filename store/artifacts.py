"""The artifact store's layout on disk (`ADGM_ARTIFACT_DIR`), shared by the API and every worker.

    models/<model id>/               a trained model (model.safetensors + model.json, adgm_core.checkpoint)
    models/.<model id>.<r>.partial/  a model being written; renamed into place when complete
    models/.deleted-<model id>/      a model being deleted
    jobs/<job id>/                   a job's resumable training state, while the job is unfinished
    datasets/<dataset id>.npz        an uploaded data set
    datasets/.<dataset id>.npz.tmp   an upload being received

Every file appears under its final name complete or not at all (a rename), so a crash leaves
only dot-named leftovers, which `sweep` removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from adgm_core.model import ADGM

CHUNK = 1024 * 1024
PARTIAL_MODEL_MAX_AGE_SECONDS = 3600  # a live worker writes a model in seconds; older staging is a leftover


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

    def delete_training_state(self, job_id: str) -> None:
        shutil.rmtree(self.training_state_dir(job_id), ignore_errors=True)

    def stage_dataset(self, dataset_id: str, source: BinaryIO) -> StagedUpload:
        """Copies `source` durably into the staging file of `dataset_id`."""
        upload = StagedUpload(self.datasets_dir / f".{dataset_id}.npz.tmp", self.dataset_path(dataset_id), "")
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
        """Removes an upload's file and its staging file (an upload that failed after its owner was lost)."""
        StagedUpload(self.datasets_dir / f".{dataset_id}.npz.tmp", self.dataset_path(dataset_id), "",
                     published=True).discard()

    def sweep(self) -> list[Path]:
        """Removes what crashes leave behind: cut-off uploads, half-deleted models, and model
        writes abandoned for longer than any live write takes. Returns what it removed."""
        removed = list(self.datasets_dir.glob(".*.npz.tmp")) + list(self.models_dir.glob(".deleted-*"))
        cutoff = time.time() - PARTIAL_MODEL_MAX_AGE_SECONDS
        removed += [path for path in self.models_dir.glob(".*.partial") if path.stat().st_mtime < cutoff]
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return removed


def _copy_durably(source: BinaryIO, target: Path) -> str:
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()
