"""Tables of the job store: jobs, their per-epoch progress, trained models, uploaded data sets and
their label log, uploads being decoded, Label Studio's projects, and the API's tokens."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.db import Base, UTCDateTime, utcnow
from store.scopes import Scope
from store.status import JobStatus

ID = String(32)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, values_callable=lambda statuses: [s.value for s in statuses]),
        index=True,
    )
    dataset: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Liveness and ownership of a running job: the worker holding `claim_token` beats `heartbeat_at`.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    model_id: Mapped[str | None] = mapped_column(ID)
    error: Mapped[str | None] = mapped_column(Text)
    dataset_version: Mapped[int | None] = mapped_column(Integer)  # an upload's label version it trains on
    history: Mapped[list["JobProgress"]] = relationship(
        order_by="JobProgress.seq", lazy="selectin", viewonly=True
    )


class JobProgress(Base):
    """One row per epoch run (a resumed job may report an epoch again after its last checkpoint)."""

    __tablename__ = "job_progress"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ID, ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    elbo: Mapped[float] = mapped_column(Float)
    labelled_accuracy: Mapped[float] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    examples_per_second: Mapped[float] = mapped_column(Float)
    eta_seconds: Mapped[float] = mapped_column(Float)
    learning_rate: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrainedModel(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str | None] = mapped_column(ID, index=True)
    dataset: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    n_images: Mapped[int] = mapped_column(Integer)
    n_labelled: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int] = mapped_column(Integer)
    image_shape: Mapped[list[int]] = mapped_column(JSON)
    n_test_images: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Bumped by every append to the label log (store.labels); 0: the labels of the uploaded file.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    class_names: Mapped[list[str] | None] = mapped_column(JSON)  # None (uploads before 0002): "0".."K-1"

    @property
    def names(self) -> list[str]:
        return list(self.class_names) if self.class_names else [str(k) for k in range(self.n_classes)]


class Upload(Base):
    """An upload decoded in the background (store.uploads): its state and progress while the API
    process that received it (`owner`, beating `heartbeat_at`) decodes its images. On success the
    data set of the same id is recorded in the same transaction."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the data set's id once it is stored
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, values_callable=lambda statuses: [s.value for s in statuses]),
    )
    n_images: Mapped[int] = mapped_column(Integer)  # images to decode
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[list[str]] = mapped_column(JSON)  # "<file> (why)" of the files not used
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LabelEntry(Base):
    """One label set (or removed: `label` None) on one training image of an uploaded data set,
    by `author`, creating data-set version `version`. Rows are only ever appended."""

    __tablename__ = "label_log"
    __table_args__ = (Index("ix_label_log_dataset_id_image_index", "dataset_id", "image_index"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ID, ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    image_index: Mapped[int] = mapped_column(Integer)
    label: Mapped[int | None] = mapped_column(Integer)
    old_label: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelStudioProject(Base):
    """A Label Studio project served by the /label-studio backend, and the data set holding its
    tasks' images (a snapshot; a newer snapshot replaces the link when tasks were added)."""

    __tablename__ = "label_studio_projects"

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    dataset_id: Mapped[str | None] = mapped_column(ID, ForeignKey("datasets.id", ondelete="SET NULL"))
    label_config: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelStudioTask(Base):
    """Which training image of a linked data set shows which Label Studio task."""

    __tablename__ = "label_studio_tasks"

    dataset_id: Mapped[str] = mapped_column(ID, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    image_index: Mapped[int] = mapped_column(Integer)


class ApiToken(Base):
    """A scoped API token made by `adgm token create`. Only the SHA-256 of the token is kept (a
    token is 256 random bits, so a plain hash cannot be reversed by guessing). Revoked tokens stay,
    so that `adgm token list` shows them; a name is unique among the tokens not revoked."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("ix_api_tokens_active_name", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[Scope] = mapped_column(
        Enum(Scope, native_enum=False, length=16, values_callable=lambda scopes: [s.value for s in scopes])
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def state(self, now: datetime) -> str:
        """"revoked", "expired" or "active" at `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
