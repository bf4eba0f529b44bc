"""The state machine of uploads decoded in the background, in the job store's manner (store.jobs):

    queued ──▶ running ──▶ succeeded | failed
       └──────────────────────────▶ failed      the API process holding it stopped, or went silent

An upload belongs to the API process that received it (`owner`), which beats `heartbeat_at` while
it holds it. Every transition is one conditional UPDATE on the status and the owner, so an
upload whose owner went silent and was failed by a reaper can never succeed afterwards, and
`succeed` records the data set and its first labels in the same transaction as the new state:
there is never a data set row of an upload that failed.
"""

from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import sessionmaker

from store.db import utcnow
from store.status import JobStatus
from store.tables import Dataset, LabelEntry, Upload

UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)
OWNER_LOST = ("the server stopped while it decoded this upload, so nothing of it was kept; "
              "send it again")


class UploadStore:
    """Transitions of upload records. Every method opens and commits its own short transaction."""

    def __init__(self, sessions: sessionmaker, stale_after_seconds: float = 60.0):
        self.sessions = sessions
        self.stale_after = timedelta(seconds=stale_after_seconds)

    def create(self, upload_id: str, name: str, n_images: int, skipped: list[str], owner: str) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            session.add(Upload(id=upload_id, name=name, status=JobStatus.QUEUED, n_images=n_images, n_done=0,
                               skipped=skipped, owner=owner, created_at=now, heartbeat_at=now))

    def get(self, upload_id: str) -> Upload | None:
        with self.sessions() as session:
            return session.get(Upload, upload_id)

    def _held(self, upload_id: str, owner: str, *statuses: JobStatus):
        return (Upload.id == upload_id) & (Upload.owner == owner) & Upload.status.in_(statuses)

    def start(self, upload_id: str, owner: str) -> bool:
        """queued → running."""
        now = utcnow()
        with self.sessions.begin() as session:
            result = session.execute(update(Upload).where(self._held(upload_id, owner, JobStatus.QUEUED))
                                     .values(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now))
            return result.rowcount == 1

    def progress(self, upload_id: str, owner: str, n_done: int) -> bool:
        """Records the images decoded so far; False when the upload is no longer this owner's."""
        with self.sessions.begin() as session:
            result = session.execute(update(Upload).where(self._held(upload_id, owner, JobStatus.RUNNING))
                                     .values(n_done=n_done, heartbeat_at=utcnow()))
            return result.rowcount == 1

    def beat(self, owner: str) -> None:
        """Every unfinished upload of `owner` is still held."""
        with self.sessions.begin() as session:
            session.execute(update(Upload).where(Upload.owner == owner, Upload.status.in_(UNFINISHED))
                            .values(heartbeat_at=utcnow()))

    def succeed(self, upload_id: str, owner: str, dataset: Dataset, labels: list[dict],
                skipped: list[str]) -> bool:
        """running → succeeded, with the data set's record and its labels (the label log's version
        1), in one transaction; False, writing nothing, when the upload is no longer this owner's."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Upload).where(self._held(upload_id, owner, JobStatus.RUNNING))
                .values(status=JobStatus.SUCCEEDED, n_done=Upload.n_images, skipped=skipped, finished_at=utcnow())
            )
            if result.rowcount != 1:
                return False
            session.add(dataset)
            session.flush()
            if labels:
                session.execute(insert(LabelEntry), labels)
            return True

    def fail(self, upload_id: str, owner: str, error: str) -> bool:
        with self.sessions.begin() as session:
            result = session.execute(
                update(Upload).where(self._held(upload_id, owner, *UNFINISHED))
                .values(status=JobStatus.FAILED, error=error[:4000], finished_at=utcnow())
            )
            return result.rowcount == 1

    def fail_stale(self) -> list[str]:
        """Unfinished uploads whose owner stopped beating end failed; returns their ids (their files
        are the caller's to remove)."""
        now = utcnow()
        stale = Upload.status.in_(UNFINISHED) & (Upload.heartbeat_at < now - self.stale_after)
        failed = []
        with self.sessions.begin() as session:
            for upload_id in session.scalars(select(Upload.id).where(stale)).all():
                result = session.execute(update(Upload).where(Upload.id == upload_id, stale)
                                         .values(status=JobStatus.FAILED, error=OWNER_LOST, finished_at=now))
                if result.rowcount == 1:
                    failed.append(upload_id)
        return failed
