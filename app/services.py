"""What the API does beyond a single read: queueing a job, uploading a data set and deleting a
model, each across the database, the workers and the artifact store, and listing every data set
this server offers."""

import re
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from adgm_core.data import DataError, ImageSet, load_npz, semi_supervised_split
from app import crud
from app.runtime import Runtime
from app.schemas import DatasetPublic, JobCreate, JobPublic
from store.config import Settings
from store.datasets import BUILTIN, load_dataset
from store.db import utcnow
from store.ids import new_id
from store.tables import Dataset, TrainedModel


def create_job(runtime: Runtime, body: JobCreate) -> JobPublic:
    """Queues a job and wakes a worker. Raises DataError (→ 422) when the data set is unknown or
    cannot give the labels asked for, and QueueFull (→ 429) when too many jobs wait."""
    params = body.params()
    train, _test = load_dataset(runtime.settings, body.dataset)
    semi_supervised_split(train, params["labels_per_class"], params["seed"])
    job = runtime.store.create(params, body.dataset, body.name, max_queued=runtime.settings.max_queued_jobs)
    runtime.dispatcher.submit(job.id)
    with runtime.sessions() as session:
        return crud.read_job(session, job.id)


def _display_name(name: str | None, filename: str | None) -> str:
    if name and name.strip():
        return name.strip()[:100]
    stem = Path(filename or "").stem
    return re.sub(r"[^\w .+-]", "_", stem)[:100] or "upload"


def _counts(train: ImageSet) -> dict:
    return dict(
        n_images=len(train.images), n_labelled=int((train.labels >= 0).sum()), n_classes=train.n_classes,
        image_shape=[int(size) for size in train.image_shape],
    )


def upload_dataset(runtime: Runtime, session: Session, source: BinaryIO, name: str | None,
                   filename: str | None) -> DatasetPublic:
    """Checks the whole upload before it is stored (DataError → 422 naming the problem); leaves
    neither file nor record when anything fails."""
    dataset_id = new_id()
    with runtime.settings.artifacts.receive_dataset(dataset_id, source) as upload:
        train, test = load_npz(upload.path, name=dataset_id, max_bytes=runtime.settings.max_dataset_bytes)
        upload.publish()
        record = Dataset(
            id=dataset_id, name=_display_name(name, filename), sha256=upload.sha256, created_at=utcnow(),
            n_test_images=0 if test is None else len(test.images), **_counts(train),
        )
        crud.add_dataset(session, record)
    return crud.dataset_public(record)


def list_datasets(settings: Settings, session: Session) -> list[DatasetPublic]:
    """Built-in data sets (those available on this server), then uploads, newest first."""
    builtins = []
    for name, description in BUILTIN.items():
        try:
            train, _test = load_dataset(settings, name)
        except DataError:
            continue  # e.g. MNIST without ADGM_MNIST_DIR
        builtins.append(DatasetPublic(id=name, name=description, builtin=True, created_at=None, **_counts(train)))
    return builtins + crud.read_datasets(session)


def export_model(runtime: Runtime, session: Session, model_id: str) -> bytes | None:
    """The model's classifier as ONNX, or None when there is no such model."""
    record = session.get(TrainedModel, model_id)
    return None if record is None else runtime.models.get(record).onnx()


def delete_model(runtime: Runtime, session: Session, model_id: str) -> bool:
    """Removes the record first (no request picks the model any more), then its files."""
    if not crud.delete_model(session, model_id):
        return False
    runtime.models.evict(model_id)
    runtime.settings.artifacts.delete_model(model_id)
    return True
