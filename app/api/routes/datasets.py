"""Data sets: the built-in ones and `.npz` uploads kept in the artifact store."""

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Form, UploadFile, status

from adgm_core.data import DataError, ImageSet, load_npz
from app import crud
from app.api.deps import ApiKeyDep, RuntimeDep, SessionDep, SettingsDep
from app.api.responses import BODY_ERRORS, UNAUTHORIZED, unprocessable
from app.core.db import utcnow
from app.datasets import BUILTIN, load_dataset
from app.jobs.state import new_id
from app.models import Dataset
from app.schemas import DatasetPublic, DatasetsPublic

router = APIRouter(prefix="/datasets", tags=["datasets"])

CHUNK = 1024 * 1024


def _store_upload(source: BinaryIO, target: Path) -> str:
    """Copies the upload to `target` durably and returns its sha256."""
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _display_name(name: str | None, filename: str | None) -> str:
    if name and name.strip():
        return name.strip()[:100]
    stem = Path(filename or "").stem
    return re.sub(r"[^\w .+-]", "_", stem)[:100] or "upload"


def _public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id, name=dataset.name, builtin=False, n_images=dataset.n_images, n_labelled=dataset.n_labelled,
        n_classes=dataset.n_classes, image_shape=dataset.image_shape, created_at=dataset.created_at,
    )


def _counts(train: ImageSet) -> dict:
    return dict(
        n_images=len(train.images), n_labelled=int((train.labels >= 0).sum()), n_classes=train.n_classes,
        image_shape=[int(size) for size in train.image_shape],
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, dependencies=[ApiKeyDep],
    responses={**UNAUTHORIZED, **BODY_ERRORS, **unprocessable("Not a valid data set (the detail says why)")},
)
def upload_dataset(
    file: Annotated[UploadFile, File(description=".npz with images (uint8 N×H×W or N×D) and labels (−1 = unlabelled)")],
    runtime: RuntimeDep,
    session: SessionDep,
    name: Annotated[str | None, Form(max_length=100)] = None,
) -> DatasetPublic:
    """Upload a data set; it is checked completely before it is stored."""
    directory = runtime.settings.datasets_dir
    dataset_id = new_id()
    partial = directory / f".{dataset_id}.npz.tmp"
    final = directory / f"{dataset_id}.npz"
    try:
        sha256 = _store_upload(file.file, partial)
        # DataError → 422 naming the problem
        train, test = load_npz(partial, name=dataset_id, max_bytes=runtime.settings.max_dataset_bytes)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    record = Dataset(
        id=dataset_id, name=_display_name(name, file.filename), sha256=sha256, created_at=utcnow(),
        n_test_images=0 if test is None else len(test.images), **_counts(train),
    )
    try:
        crud.add_dataset(session, record)
    except Exception:
        final.unlink(missing_ok=True)
        raise
    return _public(record)


@router.get("")
def list_datasets(settings: SettingsDep, session: SessionDep) -> DatasetsPublic:
    """Built-in data sets (those available on this server) and uploads, newest upload first."""
    builtins = []
    for name, description in BUILTIN.items():
        try:
            train, _test = load_dataset(settings, name)
        except DataError:
            continue  # e.g. MNIST without ADGM_MNIST_DIR
        builtins.append(DatasetPublic(id=name, name=description, builtin=True, created_at=None, **_counts(train)))
    return DatasetsPublic(datasets=builtins + [_public(dataset) for dataset in crud.read_datasets(session)])
