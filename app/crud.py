"""Reads of the job store shaped for the API, and the records the API itself writes."""

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import Dataset, Job, JobProgress, TrainedModel
from app.schemas import EpochProgress, JobPublic, ModelPublic


def _job_public(job: Job, history: list[JobProgress]) -> JobPublic:
    epochs = [EpochProgress.model_validate(row) for row in history]
    return JobPublic(
        id=job.id, name=job.name, status=job.status, dataset=job.dataset, params=job.params,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        progress=epochs[-1] if epochs else None, history=epochs, model_id=job.model_id, error=job.error,
    )


def read_job(session: Session, job_id: str) -> JobPublic | None:
    job = session.get(Job, job_id)
    if job is None:
        return None
    return _job_public(job, progress_after(session, job_id))


def read_jobs(session: Session, limit: int) -> list[JobPublic]:
    """Newest first, each with its history (two queries, whatever the number of jobs)."""
    jobs = session.scalars(select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)).all()
    history: dict[str, list[JobProgress]] = defaultdict(list)
    if jobs:
        rows = session.scalars(
            select(JobProgress).where(JobProgress.job_id.in_([job.id for job in jobs])).order_by(JobProgress.seq)
        )
        for row in rows:
            history[row.job_id].append(row)
    return [_job_public(job, history[job.id]) for job in jobs]


def progress_after(session: Session, job_id: str, seq: int = 0) -> list[JobProgress]:
    """The job's progress rows written after row `seq`, in order."""
    query = select(JobProgress).where(JobProgress.job_id == job_id, JobProgress.seq > seq).order_by(JobProgress.seq)
    return list(session.scalars(query))


def default_model(session: Session) -> TrainedModel | None:
    """The newest model: the one used when a request names none."""
    query = select(TrainedModel).order_by(TrainedModel.created_at.desc(), TrainedModel.id).limit(1)
    return session.scalars(query).first()


def model_public(model: TrainedModel, default_id: str | None) -> ModelPublic:
    return ModelPublic(
        id=model.id, name=model.name, job_id=model.job_id, dataset=model.dataset, created_at=model.created_at,
        config=model.config, metrics=model.metrics, is_default=model.id == default_id,
    )


def read_models(session: Session) -> list[TrainedModel]:
    return list(session.scalars(select(TrainedModel).order_by(TrainedModel.created_at.desc(), TrainedModel.id)))


def delete_model(session: Session, model_id: str) -> bool:
    deleted = session.execute(delete(TrainedModel).where(TrainedModel.id == model_id)).rowcount == 1
    session.commit()
    return deleted


def read_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)))


def add_dataset(session: Session, dataset: Dataset) -> None:
    session.add(dataset)
    session.commit()
