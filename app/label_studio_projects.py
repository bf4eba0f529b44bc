"""Label Studio projects served by the /label-studio backend: their link to a data set of ours,
annotations written through the label log, and training started from Label Studio.

A project's data set is a snapshot of its tasks' images (fetched from Label Studio, brought to
the model's size as /classify does) with the classes of its <Choices> and, as the first append of
its label log, the labels its annotations held then. It is made once every class has at least one
annotation (a data set must); until then the labels wait in Label Studio, which the snapshot reads.
Later annotations are appended as they arrive (author `label-studio:<user id>`); an annotation on
a task the snapshot does not have (imported later) makes a new snapshot, which the project is
linked to from then on. Data-set files never change once written, so jobs keep training on
exactly what they were given.
"""

from __future__ import annotations

import io
import threading

import numpy as np
from sqlalchemy import insert, select

from adgm_core.data import DataError
from app import crud, services
from app.label_studio import FetchError, LabelStudioClient, LabelStudioError, LabellingConfig, parse_config
from app.runtime import Runtime
from app.schemas import JobCreate, JobPublic
from store.db import utcnow
from store.ids import new_id
from store.labels import LabelLog
from store.tables import Dataset, LabelEntry, LabelStudioProject, LabelStudioTask, TrainedModel

AUTHOR = "label-studio"
DEFAULT_SHAPE = (28, 28)
_LINKING = threading.Lock()  # one snapshot at a time: two webhooks for a new task make one


def project_id_of(value: object) -> int:
    """Label Studio names a project `12`, `"12.1700000000"` (id.created-at) or `{"id": 12, …}`."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, str) and value.split(".")[0].isdigit():
        value = int(value.split(".")[0])
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise LabelStudioError("The request names no Label Studio project.")
    return value


def choice_of(result: object, config: LabellingConfig) -> int | None:
    """The class an annotation's result chose with the project's <Choices>, or None."""
    for region in result if isinstance(result, list) else []:
        if isinstance(region, dict) and region.get("from_name") == config.from_name:
            chosen = (region.get("value") or {}).get("choices") or []
            if chosen and chosen[0] in config.choices:
                return config.choices.index(chosen[0])
    return None


def _current_label(task: dict, config: LabellingConfig) -> int | None:
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return None
    newest = max(annotations, key=lambda a: (str(a.get("updated_at") or ""), a.get("id") or 0))
    return choice_of(newest.get("result"), config)


def register(runtime: Runtime, project_id: int, label_config: str) -> LabellingConfig:
    """Records the project's config (POST /setup); a change of classes drops the link to its old
    data set, and the next annotation or training request makes a new one."""
    config = parse_config(label_config)
    with runtime.sessions.begin() as session:
        project = session.get(LabelStudioProject, project_id)
        if project is None:
            session.add(LabelStudioProject(project_id=project_id, dataset_id=None, label_config=label_config,
                                           updated_at=utcnow()))
        elif project.label_config != label_config:
            if parse_config(project.label_config).choices != config.choices:
                project.dataset_id = None
            project.label_config, project.updated_at = label_config, utcnow()
    return config


def linked(runtime: Runtime, project_id: int) -> tuple[LabellingConfig, str | None]:
    with runtime.sessions() as session:
        project = session.get(LabelStudioProject, project_id)
        if project is None:
            raise LabelStudioError(f"Label Studio project {project_id} is not set up here: connect the ML backend "
                                   f"to it (POST /label-studio/setup) first.")
        return parse_config(project.label_config), project.dataset_id


def model_for(session, dataset_id: str | None) -> TrainedModel | None:
    """The newest model trained on the project's data set, else the newest model."""
    if dataset_id is not None:
        query = select(TrainedModel).where(TrainedModel.dataset == dataset_id).order_by(TrainedModel.created_at.desc())
        if (record := session.scalars(query.limit(1)).first()) is not None:
            return record
    return crud.default_model(session)


def _image_shape(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as session:
        record = crud.default_model(session)
    return tuple(record.config["x_shape"]) if record is not None else DEFAULT_SHAPE


class NotEveryClassLabelled(LabelStudioError):
    def __init__(self, missing: list[str]):
        super().__init__(f"Label at least one task of every class first; none yet of: {', '.join(missing)}.")
        self.missing = missing


def snapshot(runtime: Runtime, project_id: int) -> str:
    """A new data set of the project's tasks as they are now; links the project to it. Raises
    NotEveryClassLabelled while some class has no annotation yet."""
    config, _old = linked(runtime, project_id)
    settings = runtime.settings
    client = LabelStudioClient(settings)
    try:
        tasks = client.tasks(project_id, settings.max_dataset_images)
        shape = _image_shape(runtime)
        images, labels, task_ids = [], [], []
        for task in tasks:
            try:
                images.append(client.model_input((task.get("data") or {}).get(config.value), shape))
            except FetchError:
                continue  # a task whose image cannot be had stays out of the data set (its predictions say why)
            label = _current_label(task, config)
            labels.append(-1 if label is None else label)
            task_ids.append(task["id"])
    finally:
        client.close()
    if not images:
        raise LabelStudioError(f"Label Studio project {project_id} has no task with a readable image yet.")
    if missing := [name for k, name in enumerate(config.choices) if k not in labels]:
        raise NotEveryClassLabelled(missing)
    return _store(runtime, project_id, config, np.stack(images), np.array(labels, np.int64), task_ids)


def _store(runtime: Runtime, project_id: int, config: LabellingConfig, images: np.ndarray, labels: np.ndarray,
           task_ids: list[int]) -> str:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels, n_classes=np.int64(len(config.choices)))
    buffer.seek(0)
    dataset_id, labelled = new_id(), np.flatnonzero(labels >= 0)
    with runtime.settings.artifacts.receive_dataset(dataset_id, buffer) as upload, runtime.sessions.begin() as session:
        upload.publish()
        session.add(Dataset(
            id=dataset_id, name=f"Label Studio project {project_id}", sha256=upload.sha256, created_at=utcnow(),
            n_images=len(images), n_labelled=len(labelled), n_classes=len(config.choices),
            image_shape=[int(side) for side in images.shape[1:]], n_test_images=0, class_names=config.choices,
            version=1 if len(labelled) else 0,
        ))
        session.flush()
        if len(labelled):
            now = utcnow()
            session.execute(insert(LabelEntry), [
                dict(dataset_id=dataset_id, version=1, image_index=int(i), label=int(labels[i]), old_label=None,
                     author=AUTHOR, created_at=now) for i in labelled])
        session.execute(insert(LabelStudioTask), [
            dict(dataset_id=dataset_id, task_id=task_id, image_index=index) for index, task_id in enumerate(task_ids)])
        project = session.get(LabelStudioProject, project_id)
        project.dataset_id, project.updated_at = dataset_id, utcnow()
    return dataset_id


def _indices(runtime: Runtime, dataset_id: str, task_ids: list[int]) -> dict[int, int]:
    with runtime.sessions() as session:
        query = select(LabelStudioTask.task_id, LabelStudioTask.image_index).where(
            LabelStudioTask.dataset_id == dataset_id, LabelStudioTask.task_id.in_(task_ids))
        return dict(session.execute(query).all())


def annotated(runtime: Runtime, project_id: int, task_id: int, result: object, cancelled: bool, author: str) -> dict:
    """ANNOTATION_CREATED / ANNOTATION_UPDATED: the task's label, through the label log."""
    with _LINKING:
        config, dataset_id = linked(runtime, project_id)
        index = _indices(runtime, dataset_id, [task_id]).get(task_id) if dataset_id else None
        if index is None:  # a task the snapshot lacks: a new snapshot holds it, with this annotation
            try:
                return {"dataset_id": snapshot(runtime, project_id), "snapshot": True}
            except NotEveryClassLabelled as waiting:  # kept by Label Studio until the snapshot can be made
                return {"dataset_id": dataset_id, "waiting_for_classes": waiting.missing}
    label = None if cancelled else choice_of(result, config)
    version = LabelLog(runtime.sessions).append(dataset_id, [(index, label)], author)
    return {"dataset_id": dataset_id, "image_index": index, "label": label, "version": version}


def reconcile(runtime: Runtime, project_id: int, author: str) -> dict:
    """ANNOTATIONS_DELETED (Label Studio names only the annotations' ids): each task of the data set
    takes the label its newest remaining annotation gives in Label Studio now, or none."""
    with _LINKING:
        config, dataset_id = linked(runtime, project_id)
        if dataset_id is None:
            return {"dataset_id": None, "changed": 0}
        client = LabelStudioClient(runtime.settings)
        try:
            tasks = client.tasks(project_id, runtime.settings.max_dataset_images)
        finally:
            client.close()
        indices = _indices(runtime, dataset_id, [task["id"] for task in tasks])
        log = LabelLog(runtime.sessions)
        ours = log.labels(dataset_id)
        changes = [(indices[task["id"]], label) for task in tasks if task["id"] in indices
                   and (label := _current_label(task, config)) != ours.get(indices[task["id"]])]
        if not changes:
            return {"dataset_id": dataset_id, "changed": 0}
        return {"dataset_id": dataset_id, "changed": len(changes), "version": log.append(dataset_id, changes, author)}


def train(runtime: Runtime, project_id: int) -> JobPublic:
    """START_TRAINING: a job on the project's data set (a new snapshot when tasks were added),
    warm-started from the newest model that fits it."""
    with _LINKING:
        config, dataset_id = linked(runtime, project_id)
        client = LabelStudioClient(runtime.settings)
        try:
            task_ids = [task["id"] for task in client.tasks(project_id, runtime.settings.max_dataset_images)]
        finally:
            client.close()
        if dataset_id is None or len(_indices(runtime, dataset_id, task_ids)) < len(task_ids):
            dataset_id = snapshot(runtime, project_id)
    with runtime.sessions() as session:
        start = model_for(session, dataset_id)
    name = f"Label Studio project {project_id}"
    try:
        if start is not None:
            try:
                return services.create_job(runtime, JobCreate(dataset=dataset_id, init_model=start.id, name=name))
            except services.IncompatibleModel:
                pass  # e.g. other classes: a cold start
        return services.create_job(runtime, JobCreate(dataset=dataset_id, name=name))
    except DataError as error:
        raise LabelStudioError(f"Training cannot start on project {project_id}'s labels: {error}") from None

