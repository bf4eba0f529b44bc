"""What the API does beyond a single read: queueing a job, uploading a data set, labelling it and
suggesting what to label next, and deleting a model, each across the database, the workers and
the artifact store, and listing every data set this server offers."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from adgm_core.acquisition import DEFAULT_STRATEGY, REPRESENTATIVE, select
from adgm_core.first_labels import representatives
from adgm_core.cpu import check_bf16
from adgm_core.data import DataError, ImageSet, labelled_split, semi_supervised_split
from adgm_core.data.uploads import Limits, plan_upload
from adgm_core.data.uploads import Upload as DecodedUpload
from adgm_core.images import png_grid
from adgm_core.presets import DataProfile
from adgm_core.warm_start import retrain
from app import crud
from app.inference import LoadedModel
from app.runtime import Runtime
from app.schemas import (ClassCount, DatasetDetail, DatasetPublic, JobCreate, JobPublic, LabelIn, LabelLogPublic,
                         LabelsAccepted, Suggestion, SuggestionsPublic, UploadPublic)
from app.uploads import UPLOAD_AUTHOR, PendingUpload, dataset_record, write_npz
from store.config import Settings
from store.datasets import BUILTIN, class_names, load_dataset, load_labelled
from store.ids import new_id
from store.labels import DatasetNotFound, LabelError, LabelLog
from store.status import JobStatus
from store.tables import Dataset, LabelEntry, TrainedModel

ARCHITECTURE = ("hidden", "z_dim", "a_dim", "skip", "activation", "batch_norm")


class IncompatibleModel(Exception):
    """A warm start from a model of another architecture, image size or set of classes (→ 409)."""


class ModelNotFound(LookupError):
    pass


def create_job(runtime: Runtime, body: JobCreate) -> JobPublic:
    """Queues a job and wakes a worker. Raises DataError (→ 422) when the data set is unknown or
    cannot give the labels asked for, IncompatibleModel (→ 409) for a warm start from a model that
    does not fit, NoNativeBf16 (→ 422) for bf16 where the embedded workers would train on a CPU
    without native bfloat16, and QueueFull (→ 429) when too many jobs wait."""
    train, _test, version = load_labelled(runtime.settings, runtime.sessions, body.dataset)
    params = body.params(DataProfile.of(train))  # the preset adapted to these images
    if runtime.settings.embedded:  # its workers train on this machine; a Celery worker checks its own
        check_bf16(params["bf16"], runtime.settings.device)
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
    none, weights and epochs by the warm-start rule (adgm_core.warm_start); refuses
    a model that cannot take this data or these sizes."""
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
    rule = retrain(params["epochs"], max(1, len(train.images) // params["batch_size"]), body.epochs)
    params["epochs"] = rule.epochs  # from the cold training's epochs, as resolved for this data
    params["init_model"] = record.id
    params["init_weights"] = rule.from_weights  # False: a cold training with the model's architecture


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
                   skip_invalid: bool = False) -> DatasetDetail | UploadPublic:
    """Checks the upload's layout (DataError → 422 or UploadTooLarge → 413 naming the problem). A
    zip of more than `upload_background_images` images is handed to the upload processor and
    answered with its state (→ 202); anything else is decoded and stored now as one .npz, its
    labels as the label log's first append (version 1). Leaves neither file nor record when
    anything fails."""
    settings = runtime.settings
    dataset_id = new_id()
    limits = Limits(settings.max_dataset_bytes, settings.max_dataset_images, settings.max_image_pixels)
    staged = settings.artifacts.stage_dataset(dataset_id, source)
    try:
        plan = plan_upload(staged.path, limits, size=size, skip_invalid=skip_invalid, name=dataset_id)
        background = plan.images_to_decode > settings.upload_background_images
        if not background:
            loaded = plan.load()
            write_npz(staged.path, loaded.train, loaded.test)
            staged.publish()
            record, labels = dataset_record(dataset_id, _display_name(name, filename), staged.sha256, loaded)
            session.add(record)
            session.flush()
            if labels:
                session.execute(insert(LabelEntry), labels)
            session.commit()
    except BaseException:
        staged.discard()
        raise
    if background:  # from here on its files are the processor's
        runtime.uploads.submit(PendingUpload(dataset_id, _display_name(name, filename), staged, plan))
        return upload_status(runtime, session, dataset_id)
    return _detail_of_upload(record, loaded)


def _detail_of_upload(record: Dataset, loaded: DecodedUpload) -> DatasetDetail:
    counts = np.bincount(loaded.train.labels[loaded.train.labels >= 0], minlength=loaded.train.n_classes)
    return DatasetDetail(**crud.dataset_public(record).model_dump(), n_test_images=record.n_test_images,
                         label_counts=_class_counts(record.names, counts), skipped=loaded.skipped)


def upload_status(runtime: Runtime, session: Session, upload_id: str) -> UploadPublic | None:
    """An upload decoded in the background, with its data set once it succeeded; None when unknown."""
    upload = runtime.uploads.store.get(upload_id)
    if upload is None:
        return None
    public = UploadPublic.model_validate(upload)
    if upload.status == JobStatus.SUCCEEDED:
        detail = dataset_detail(runtime, session, upload_id)
        public.dataset = detail.model_copy(update={"skipped": upload.skipped})
    return public


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


def suggestions(runtime: Runtime, model: Callable[[bool], LoadedModel | None], dataset_id: str, n: int,
                strategy: str | None, diverse: bool, seed: int) -> SuggestionsPublic:
    """The `n` unlabelled images of the data set to label next, by `strategy` (`DEFAULT_STRATEGY`
    when None). `model(required)` loads the model asked for: the model's strategies need one;
    `representative` needs none, and adds the guesses of the one there is when it fits the data."""
    train, _test, version = load_labelled(runtime.settings, runtime.sessions, dataset_id)
    pool = np.flatnonzero(train.labels < 0)
    strategy = strategy or DEFAULT_STRATEGY
    if strategy == REPRESENTATIVE:
        guesser = model(False)
        return _representatives(dataset_id, train, version, len(pool), n, seed,
                                guesser if guesser is not None and _fits(guesser, train) else None)
    loaded = model(True)
    if not _fits(loaded, train):
        raise IncompatibleModel(
            f"model {loaded.id} takes {loaded.image_shape[0]}×{loaded.image_shape[1]} images of {loaded.n_classes} "
            f"classes; data set {dataset_id} has {train.image_shape[0]}×{train.image_shape[1]} images of "
            f"{train.n_classes} classes.")
    scores = loaded.score_pool(train.images, strategy, seed) if len(pool) else None  # labelled too: `cover` avoids them
    chosen = select(scores, n, among=pool, diverse=diverse, labelled=np.flatnonzero(train.labels >= 0),
                    seed=seed) if len(pool) else []
    items = [Suggestion(index=int(i), image_url=f"/datasets/{dataset_id}/images/{int(i)}", score=float(scores.scores[i]),
                        **_guess(loaded, scores.probabilities[i]))
             for i in chosen]
    return SuggestionsPublic(model_id=loaded.id, dataset=dataset_id, version=version or 0, strategy=strategy,
                             diverse=diverse, seed=seed, pool_size=len(pool), suggestions=items)


def _fits(model: LoadedModel, train: ImageSet) -> bool:
    return tuple(train.image_shape) == tuple(model.image_shape) and train.n_classes == model.n_classes


def _guess(model: LoadedModel, probabilities: np.ndarray) -> dict:
    k = int(np.argmax(probabilities))
    return dict(label=k, label_name=model.class_names[k], probabilities=[float(p) for p in probabilities])


def _representatives(dataset_id: str, train: ImageSet, version: int | None, pool_size: int, n: int, seed: int,
                     guesser: LoadedModel | None) -> SuggestionsPublic:
    """Representative unlabelled images, chosen from the pixels (adgm_core.first_labels), with
    `guesser`'s class probabilities when given; the score of each is the share of the unlabelled
    images its cluster holds."""
    chosen = representatives(train.images, n, train.labels, seed=seed)
    probabilities = (guesser.classify(train.images[chosen.indices], novelty=False)[0]
                     if guesser is not None and len(chosen.indices) else None)
    items = [Suggestion(index=int(i), image_url=f"/datasets/{dataset_id}/images/{int(i)}", score=float(share),
                        **(_guess(guesser, probabilities[j]) if probabilities is not None else {}))
             for j, (i, share) in enumerate(zip(chosen.indices, chosen.shares))]
    return SuggestionsPublic(model_id=guesser.id if guesser is not None else None, dataset=dataset_id,
                             version=version or 0, strategy=REPRESENTATIVE, diverse=True, seed=seed,
                             pool_size=pool_size, suggestions=items)


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
    runtime.settings.artifacts.models_changed()
    runtime.models.evict(model_id)
    runtime.settings.artifacts.delete_model(model_id)
    return True
