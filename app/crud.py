"""Reads of the job store shaped for the API, and the records the API itself writes. Table rows
become response bodies here, and only here, through `model_validate`."""

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.orm import Session

from app.schemas import DatasetPublic, JobPublic, LabelEntryPublic, LabelLogPublic, ModelPublic
from store.tables import Dataset, Job, JobProgress, LabelEntry, TrainedModel


def read_job(session: Session, job_id: str) -> JobPublic | None:
    job = session.get(Job, job_id)
    return None if job is None else JobPublic.model_validate(job)


def read_jobs(session: Session, limit: int) -> list[JobPublic]:
    """Newest first, each with its history (two queries, whatever the number of jobs)."""
    jobs = session.scalars(select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)).all()
    return [JobPublic.model_validate(job) for job in jobs]


def progress_after(session: Session, job_id: str, seq: int = 0) -> list[JobProgress]:
    """The job's progress rows written after row `seq`, in order."""
    query = select(JobProgress).where(JobProgress.job_id == job_id, JobProgress.seq > seq).order_by(JobProgress.seq)
    return list(session.scalars(query))


NEWEST_FIRST = (TrainedModel.created_at.desc(), TrainedModel.id)
_DEFAULT_MODEL_ID = select(TrainedModel.id).order_by(*NEWEST_FIRST).limit(1)
_MODEL_ID = select(TrainedModel.id).where(TrainedModel.id == bindparam("model_id"))


def default_model(session: Session) -> TrainedModel | None:
    """The newest model: the one used when a request names none."""
    return session.scalars(select(TrainedModel).order_by(*NEWEST_FIRST).limit(1)).first()


def served_model_id(connection: Connection, model_id: str | None) -> str | None:
    """The id of the model an inference request means: `model_id` if that model exists, else (None)
    the default model's; None when there is none. One indexed lookup of one column outside any ORM
    session, cheap enough to ask on every request."""
    if model_id is None:
        return connection.scalar(_DEFAULT_MODEL_ID)
    return connection.scalar(_MODEL_ID, {"model_id": model_id})


def model_public(model: TrainedModel, default_id: str | None) -> ModelPublic:
    return ModelPublic.model_validate(model).model_copy(update={"is_default": model.id == default_id})


def read_model(session: Session, model_id: str) -> ModelPublic | None:
    model = session.get(TrainedModel, model_id)
    if model is None:
        return None
    default = default_model(session)
    return model_public(model, default.id if default else None)


def read_models(session: Session) -> tuple[list[ModelPublic], str | None]:
    """Every model, newest first, and the default's id."""
    rows = session.scalars(select(TrainedModel).order_by(TrainedModel.created_at.desc(), TrainedModel.id)).all()
    default_id = rows[0].id if rows else None
    return [model_public(row, default_id) for row in rows], default_id


def delete_model(session: Session, model_id: str) -> bool:
    deleted = session.execute(delete(TrainedModel).where(TrainedModel.id == model_id)).rowcount == 1
    session.commit()
    return deleted


def dataset_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic.model_validate(dataset).model_copy(update={"class_names": dataset.names})


def read_datasets(session: Session) -> list[DatasetPublic]:
    rows = session.scalars(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id))
    return [dataset_public(row) for row in rows]


def add_dataset(session: Session, dataset: Dataset) -> None:
    session.add(dataset)
    session.commit()


def label_log_public(dataset_id: str, version: int, entries: list[LabelEntry]) -> LabelLogPublic:
    return LabelLogPublic(dataset=dataset_id, version=version,
                          entries=[LabelEntryPublic.model_validate(entry) for entry in entries])
