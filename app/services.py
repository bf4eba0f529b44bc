"""What the API does beyond a single read: queueing a job, uploading a data set, labelling it and
suggesting what to label next, and deleting a model, each across the database, the workers and
the artifact store, and listing every data set this server offers."""

import io
import os
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from adgm_core.acquisition import select
from adgm_core.cpu import check_bf16
from adgm_core.data import DataError, ImageSet, labelled_split, semi_supervised_split
from adgm_core.data.uploads import Limits, load_upload
from adgm_core.images import png_grid
from adgm_core.presets import PRESETS
from app import crud
from app.inference import LoadedModel
from app.runtime import Runtime
from app.schemas import (ClassCount, DatasetDetail, DatasetPublic, JobCreate, JobPublic, LabelIn, LabelLogPublic,
                         LabelsAccepted, Suggestion, SuggestionsPublic)
from store.config import Settings
from store.datasets import BUILTIN, class_names, load_dataset, load_labelled
from store.db import utcnow
from store.ids import new_id
from store.labels import DatasetNotFound, LabelError, LabelLog
from store.tables import Dataset, LabelEntry, TrainedModel

ARCHITECTURE = ("hidden", "z_dim", "a_dim", "skip", "activation", "batch_norm")
WARM_EPOCHS_SHARE = 5  # a warm start runs 1/5 of the preset's epochs unless told otherwise
UPLOAD_AUTHOR = "upload"


class IncompatibleModel(Exception):
    """A warm start from a model of another architecture, image size or set of classes (→ 409)."""


class ModelNotFound(LookupError):
    pass


def create_job(runtime: Runtime, body: JobCreate) -> JobPublic:
    """Queues a job and wakes a worker. Raises DataError (→ 422) when the data set is unknown or
    cannot give the labels asked for, IncompatibleModel (→ 409) for a warm start from a model that
    does not fit, NoNativeBf16 (→ 422) for bf16 where the embedded workers would train on a CPU
    without native bfloat16, and QueueFull (→ 429) when too many jobs wait."""
    params = body.params()
    if runtime.settings.embedded:  # its workers train on this machine; a Celery worker checks its own
        check_bf16(params["bf16"], runtime.settings.device)
    train, _test, version = load_labelled(runtime.settings, runtime.sessions, body.dataset)
    # a partly labelled upload trains on every label it has, unless labels_per_class is asked for
    partly_labelled = body.dataset not in BUILTIN and bool((train.labels < 0).any())
    all_labels = partly_labelled and body.labels_per_class is None
    if body.use_all_labels if body.use_all_labels is not None else all_labels:
        params["use_all_labels"] = True
        labelled_split(train)
    else:
        semi_supervised_split(train, params["labels_per_class"], params["seed"])
    if body.init_model is not None:
        _warm_start(runtime, body, params, train)
    job = runtime.store.create(params, body.dataset, body.name, max_queued=runtime.settings.max_queued_jobs,
                               dataset_version=version)
    runtime.dispatcher.submit(job.id)
    with runtime.sessions() as session:
        return crud.read_job(session, job.id)


def _warm_start(runtime: Runtime, body: JobCreate, params: dict, train: ImageSet) -> None:
    """Fills `params` for a start from `body.init_model`: its architecture where the body gives
    none, fewer epochs by default; refuses a model that cannot take this data or these sizes."""
    with runtime.sessions() as session:
        record = session.get(TrainedModel, body.init_model)
    if record is None:
        raise ModelNotFound(body.init_model)
    config = record.config
    for name in ARCHITECTURE:
        given = getattr(body, name, None)
        if given is not None and name in config and _as_list(given) != _as_list(config[name]):
            raise IncompatibleModel(f"init_model {record.id} has {name} = {config[name]}, the job asks for {given}; "
                                    "a warm start needs the same architecture (leave it out to take the model's).")
        if name in config:
            params[name] = config[name]
    if list(config["x_shape"]) != list(train.image_shape) or config["n_classes"] != train.n_classes:
        raise IncompatibleModel(
            f"init_model {record.id} takes {config['x_shape'][0]}×{config['x_shape'][1]} images of "
            f"{config['n_classes']} classes; data set {body.dataset} has {train.image_shape[0]}×{train.image_shape[1]}"
            f" images of {train.n_classes} classes.")
    if class_names(runtime.sessions, record.dataset, config["n_classes"]) != class_names(
            runtime.sessions, body.dataset, train.n_classes):
        raise IncompatibleModel(f"init_model {record.id} was trained on other classes than data set {body.dataset}'s.")
    if body.epochs is None:
        params["epochs"] = max(1, PRESETS[body.preset].resolve()["epochs"] // WARM_EPOCHS_SHARE)
    params["init_model"] = record.id


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else value


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
                   filename: str | None, size: tuple[int, int] | None = None,
                   skip_invalid: bool = False) -> DatasetDetail:
    """Checks the whole upload before it is stored (DataError → 422 or UploadTooLarge → 413 naming
    the problem), stores it as one .npz and its labels as the label log's first append (version
    1); leaves neither file nor record when anything fails."""
    settings = runtime.settings
    dataset_id = new_id()
    limits = Limits(settings.max_dataset_bytes, settings.max_dataset_images, settings.max_image_pixels)
    with settings.artifacts.receive_dataset(dataset_id, source) as upload:
        loaded = load_upload(upload.path, limits, size=size, skip_invalid=skip_invalid, name=dataset_id)
        train, test = loaded.train, loaded.test
        _write_npz(upload.path, train, test)
        upload.publish()
        labelled = np.flatnonzero(train.labels >= 0)
        record = Dataset(
            id=dataset_id, name=_display_name(name, filename), sha256=upload.sha256, created_at=utcnow(),
            n_test_images=0 if test is None else len(test.images), class_names=loaded.class_names,
            version=1 if len(labelled) else 0, **_counts(train),
        )
        session.add(record)
        session.flush()
        if len(labelled):
            now = utcnow()
            session.execute(insert(LabelEntry), [
                dict(dataset_id=dataset_id, version=1, image_index=int(i), label=int(train.labels[i]), old_label=None,
                     author=UPLOAD_AUTHOR, created_at=now) for i in labelled])
        session.commit()
    return DatasetDetail(**crud.dataset_public(record).model_dump(), n_test_images=record.n_test_images,
                         label_counts=_class_counts(record.names, np.bincount(train.labels[labelled],
                                                                               minlength=train.n_classes)),
                         skipped=loaded.skipped)


def _write_npz(path: Path, train: ImageSet, test: ImageSet | None) -> None:
    """The upload, whatever its format, as the one .npz that `load_npz` reads (over the staged file)."""
    arrays = dict(images=train.images, labels=train.labels, n_classes=np.int64(train.n_classes))
    if test is not None:
        arrays.update(test_images=test.images, test_labels=test.labels)
    with open(path, "wb") as out:
        np.savez_compressed(out, **arrays)
        out.flush()
        os.fsync(out.fileno())


def _class_counts(names: list[str], counts) -> list[ClassCount]:
    return [ClassCount(label=k, label_name=name, count=int(counts[k])) for k, name in enumerate(names)]


def _record(session: Session, dataset_id: str) -> Dataset:
    record = session.get(Dataset, dataset_id) if dataset_id not in BUILTIN else None
    if record is None:
        raise DatasetNotFound(dataset_id)
    return record


def dataset_detail(runtime: Runtime, session: Session, dataset_id: str) -> DatasetDetail:
    """One data set with the labels it has now, per class."""
    if dataset_id in BUILTIN:
        train, test = load_dataset(runtime.settings, dataset_id)  # DataError (→ 422) when not on this server
        public = next(d for d in list_datasets(runtime.settings, session) if d.id == dataset_id)
        counts = np.bincount(train.labels[train.labels >= 0], minlength=train.n_classes)
        return DatasetDetail(**public.model_dump(), n_test_images=len(test.images) if test else 0,
                             label_counts=_class_counts(public.class_names, counts))
    record = _record(session, dataset_id)
    train, _test, _version = load_labelled(runtime.settings, runtime.sessions, dataset_id)
    counts = np.bincount(train.labels[train.labels >= 0], minlength=train.n_classes)
    public = crud.dataset_public(record).model_copy(update={"n_labelled": int(counts.sum())})
    return DatasetDetail(**public.model_dump(), n_test_images=record.n_test_images,
                         label_counts=_class_counts(record.names, counts))


def label_log(runtime: Runtime, session: Session, dataset_id: str, limit: int) -> LabelLogPublic:
    """The newest `limit` entries of the data set's label log, newest first."""
    record = dataset_detail(runtime, session, dataset_id)
    entries = LabelLog(runtime.sessions).history(dataset_id, limit)
    return crud.label_log_public(dataset_id, record.version, entries)


def add_labels(runtime: Runtime, session: Session, dataset_id: str, entries: list[LabelIn],
               author: str) -> LabelsAccepted:
    """Appends labels (by class index or name; None removes) to the data set's label log."""
    record = _record(session, dataset_id)
    names = {name: k for k, name in enumerate(record.names)}
    resolved = []
    for entry in entries:
        label = entry.label
        if isinstance(label, str):
            if label not in names:
                raise LabelError(f"label {label!r} of image {entry.index} is not a class of data set {dataset_id}; "
                                 f"its classes are {', '.join(record.names[:20])}")
            label = names[label]
        resolved.append((entry.index, label))
    log = LabelLog(runtime.sessions)
    if record.version == 0:  # an upload from before the label log: its file's labels become version 1
        train, _test = load_dataset(runtime.settings, dataset_id)
        base = [(int(i), int(train.labels[i])) for i in np.flatnonzero(train.labels >= 0)]
        if base and not log.labels(dataset_id):
            log.append(dataset_id, base, UPLOAD_AUTHOR)
    version = log.append(dataset_id, resolved, author)
    counts = log.counts(dataset_id)
    return LabelsAccepted(dataset=dataset_id, version=version, added=len(resolved),
                          label_counts=_class_counts(record.names, counts))


def dataset_image(settings: Settings, dataset_id: str, index: int) -> bytes:
    """Training image `index` as a PNG (ink bright on black, as the model sees it)."""
    if dataset_id not in BUILTIN and not settings.artifacts.dataset_path(dataset_id).is_file():
        raise DatasetNotFound(dataset_id)
    train, _test = load_dataset(settings, dataset_id)
    if not 0 <= index < len(train):
        raise LabelError(f"index {index} is out of range: data set {dataset_id} has {len(train)} training images "
                         f"(0..{len(train) - 1}).")
    return png_grid(train.images[index:index + 1], columns=1)


def suggestions(runtime: Runtime, model: LoadedModel, dataset_id: str, n: int, strategy: str, diverse: bool,
                seed: int) -> SuggestionsPublic:
    """The `n` unlabelled images of the data set the model would most like labelled."""
    train, _test, version = load_labelled(runtime.settings, runtime.sessions, dataset_id)
    if tuple(train.image_shape) != tuple(model.image_shape) or train.n_classes != model.n_classes:
        raise IncompatibleModel(
            f"model {model.id} takes {model.image_shape[0]}×{model.image_shape[1]} images of {model.n_classes} "
            f"classes; data set {dataset_id} has {train.image_shape[0]}×{train.image_shape[1]} images of "
            f"{train.n_classes} classes.")
    pool = np.flatnonzero(train.labels < 0)
    scores = model.score_pool(train.images[pool], strategy, seed) if len(pool) else None
    chosen = select(scores, n, diverse=diverse) if len(pool) else []
    names = model.class_names
    items = [
        Suggestion(index=int(pool[i]), image_url=f"/datasets/{dataset_id}/images/{int(pool[i])}",
                   score=float(scores.scores[i]), label=int(np.argmax(scores.probabilities[i])),
                   label_name=names[int(np.argmax(scores.probabilities[i]))],
                   probabilities=[float(p) for p in scores.probabilities[i]])
        for i in chosen
    ]
    return SuggestionsPublic(model_id=model.id, dataset=dataset_id, version=version or 0, strategy=strategy,
                             diverse=diverse, seed=seed, pool_size=len(pool), suggestions=items)


def list_datasets(settings: Settings, session: Session) -> list[DatasetPublic]:
    """Built-in data sets (those available on this server), then uploads, newest first."""
    builtins = []
    for name, description in BUILTIN.items():
        try:
            train, _test = load_dataset(settings, name)
        except DataError:
            continue  # e.g. MNIST without ADGM_MNIST_DIR
        builtins.append(DatasetPublic(id=name, name=description, builtin=True, created_at=None,
                                      class_names=[str(k) for k in range(train.n_classes)], **_counts(train)))
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
