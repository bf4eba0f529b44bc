"""The job state machine over the job store (states and outcomes in `store.status`).

Every transition is one conditional UPDATE (compare-and-set on the status, and for a running job
on the claim token of the worker that holds it), so two workers can never both run a job and a
job is never finished twice. A running job is cancelled cooperatively: `cancel_requested` is set
here and the worker that holds the job sees it on its next heartbeat.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.config import Settings
from store.db import utcnow
from store.ids import new_id
from store.status import TERMINAL, JobStatus
from store.tables import Job, JobProgress, TrainedModel

QUEUE_LOCK_KEY = 0x6164676D  # PostgreSQL advisory lock that serialises the queue cap check


class JobNotFound(LookupError):
    pass


class JobFinished(Exception):
    """Raised when cancelling a job that has already ended."""

    def __init__(self, job: Job):
        super().__init__(f"Job {job.id} has already {job.status}; only queued or running jobs can be cancelled.")
        self.job = job


class QueueFull(Exception):
    """Raised by `create` when `max_queued` jobs are already waiting."""

    def __init__(self, limit: int):
        super().__init__(f"{limit} jobs are already queued; wait for some to start, or cancel some, then try again.")
        self.limit = limit


@dataclass(frozen=True)
class Heartbeat:
    held: bool  # False: the job is no longer ours (re-queued by the reaper, or finished)
    cancel_requested: bool


class JobStore:
    """Transitions of job records. Every method opens and commits its own short transaction."""

    def __init__(self, sessions: sessionmaker, stale_after_seconds: float = 60.0, max_attempts: int = 3):
        self.sessions = sessions
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.max_attempts = max_attempts

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings: Settings) -> "JobStore":
        return cls(sessions, settings.stale_after_seconds, settings.max_attempts)

    def create(self, params: dict[str, Any], dataset: str, name: str | None, max_queued: int | None = None,
               dataset_version: int | None = None) -> Job:
        """A new queued job; raises QueueFull, writing nothing, when `max_queued` are waiting.
        The insert comes before the count, so that concurrent creations are serialised by the
        write (SQLite) or by an advisory lock (PostgreSQL) and none slips past the cap."""
        job = Job(
            id=new_id(), name=name, status=JobStatus.QUEUED, dataset=dataset, params=params,
            created_at=utcnow(), attempts=0, cancel_requested=False, dataset_version=dataset_version,
        )
        with self.sessions.begin() as session:
            if max_queued is not None and session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(QUEUE_LOCK_KEY)))
            session.add(job)
            session.flush()
            if max_queued is not None and self._count_queued(session) > max_queued:
                raise QueueFull(max_queued)
        return job

    def mark_dispatched(self, job_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED).values(dispatched_at=utcnow())
            )

    def queued_ids(self, limit: int = 20) -> list[str]:
        """Oldest queued jobs first."""
        with self.sessions() as session:
            query = select(Job.id).where(Job.status == JobStatus.QUEUED).order_by(Job.created_at).limit(limit)
            return list(session.scalars(query))

    def claim(self, job_id: str, token: str) -> bool:
        """queued → running for the worker holding `token`; also takes over a running job whose
        worker stopped beating (a re-delivered message after its worker was lost)."""
        now = utcnow()
        claimable = or_(Job.status == JobStatus.QUEUED, self._stale(now))
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, claimable, Job.cancel_requested.is_(False), Job.attempts < self.max_attempts)
                .values(
                    status=JobStatus.RUNNING, claim_token=token, attempts=Job.attempts + 1,
                    heartbeat_at=now, started_at=func.coalesce(Job.started_at, now), error=None,
                )
            )
            return result.rowcount == 1

    def _stale(self, now):
        """Running, but its worker has not beaten for longer than `stale_after`."""
        return (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < now - self.stale_after)

    def _held(self, job_id: str, token: str):
        return (Job.id == job_id) & (Job.status == JobStatus.RUNNING) & (Job.claim_token == token)

    def _beat(self, session, job_id: str, token: str) -> bool:
        """Refreshes the heartbeat of a job that `token` still holds; False when it no longer does."""
        result = session.execute(update(Job).where(self._held(job_id, token)).values(heartbeat_at=utcnow()))
        return result.rowcount == 1

    def heartbeat(self, job_id: str, token: str) -> Heartbeat:
        with self.sessions.begin() as session:
            if not self._beat(session, job_id, token):
                return Heartbeat(held=False, cancel_requested=False)
            cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
            return Heartbeat(held=True, cancel_requested=bool(cancel))

    def record_progress(self, job_id: str, token: str, report: dict[str, Any]) -> bool:
        """Stores one epoch's report; replaces rows of epochs that a resumed run repeats."""
        with self.sessions.begin() as session:
            if not self._beat(session, job_id, token):
                return False
            session.execute(delete(JobProgress).where(JobProgress.job_id == job_id, JobProgress.epoch >= report["epoch"]))
            fields = {column: report.get(column) for column in PROGRESS_FIELDS}
            session.add(JobProgress(job_id=job_id, created_at=utcnow(), **fields))
            return True

    def succeed(self, job_id: str, token: str, model: TrainedModel) -> bool:
        """running → succeeded and the model record, in one transaction."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(self._held(job_id, token))
                .values(status=JobStatus.SUCCEEDED, finished_at=utcnow(), model_id=model.id, claim_token=None)
            )
            if result.rowcount != 1:
                return False
            session.add(model)
            return True

    def fail(self, job_id: str, token: str, error: str) -> bool:
        return self._finish(job_id, token, JobStatus.FAILED, error=error[:4000])

    def cancelled(self, job_id: str, token: str) -> bool:
        return self._finish(job_id, token, JobStatus.CANCELLED)

    def release(self, job_id: str, token: str) -> bool:
        """running → queued: the worker is shutting down; another one resumes from the checkpoint."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(self._held(job_id, token))
                .values(status=JobStatus.QUEUED, claim_token=None, heartbeat_at=None, dispatched_at=None,
                        attempts=Job.attempts - 1)
            )
            return result.rowcount == 1

    def _finish(self, job_id: str, token: str, status: JobStatus, error: str | None = None) -> bool:
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(self._held(job_id, token))
                .values(status=status, finished_at=utcnow(), error=error, claim_token=None)
            )
            return result.rowcount == 1

    def request_cancel(self, job_id: str) -> Job:
        """Queued jobs are cancelled at once, running ones at their worker's next heartbeat."""
        with self.sessions.begin() as session:
            now = utcnow()
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                .values(status=JobStatus.CANCELLED, finished_at=now, cancel_requested=True)
            )
            if result.rowcount == 0:
                session.execute(
                    update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING).values(cancel_requested=True)
                )
            job = session.get(Job, job_id)
            if job is None:
                raise JobNotFound(job_id)
            if result.rowcount == 0 and job.status in TERMINAL:
                raise JobFinished(job)
            return job

    def requeue_stale(self) -> list[str]:
        """Running jobs whose worker stopped beating go back to the queue (or end, when cancel was
        asked for or the job has lost too many workers). Returns the ids put back in the queue."""
        now = utcnow()
        stale = self._stale(now)
        requeued = []
        with self.sessions.begin() as session:
            candidates = session.execute(select(Job.id, Job.cancel_requested, Job.attempts).where(stale)).all()
            for job_id, cancel_requested, attempts in candidates:
                if cancel_requested:
                    values = dict(status=JobStatus.CANCELLED, finished_at=now)
                elif attempts >= self.max_attempts:
                    values = dict(
                        status=JobStatus.FAILED, finished_at=now,
                        error=f"The worker running this job was lost {attempts} times; giving up.",
                    )
                else:
                    values = dict(status=JobStatus.QUEUED, dispatched_at=None)
                result = session.execute(
                    update(Job).where(Job.id == job_id, stale).values(claim_token=None, heartbeat_at=None, **values)
                )
                if result.rowcount == 1 and values["status"] == JobStatus.QUEUED:
                    requeued.append(job_id)
        return requeued

    def undispatched(self, older_than_seconds: float | None = None, created_before_seconds: float = 0) -> list[str]:
        """Queued jobs never sent to the broker, and with `older_than_seconds` also those sent
        longer ago than that; only jobs created more than `created_before_seconds` ago (a job's
        own request sends it just after creating it); oldest first."""
        sent_long_ago = Job.dispatched_at.is_(None)
        if older_than_seconds is not None:
            sent_long_ago = or_(sent_long_ago, Job.dispatched_at < utcnow() - timedelta(seconds=older_than_seconds))
        settled = Job.created_at < utcnow() - timedelta(seconds=created_before_seconds)
        with self.sessions() as session:
            query = select(Job.id).where(Job.status == JobStatus.QUEUED, sent_long_ago, settled).order_by(Job.created_at)
            return list(session.scalars(query))

    def count_queued(self) -> int:
        with self.sessions() as session:
            return self._count_queued(session)

    @staticmethod
    def _count_queued(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED))


PROGRESS_FIELDS = (
    "epoch", "epochs", "elbo", "labelled_accuracy", "test_accuracy",
    "examples_per_second", "eta_seconds", "learning_rate",
)
