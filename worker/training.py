"""One training job from claim to model: the task function that the Celery worker and the
embedded worker both run. Nothing here knows about Celery or HTTP."""

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.exc import SQLAlchemyError

from adgm_core.checkpoint import save_model
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import ImageSet, semi_supervised_split
from adgm_core.trainer import EpochReport, Trainer, TrainingCancelled
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker, utcnow
from app.datasets import load_dataset
from app.jobs.state import JobStore, new_id
from app.models import Job, TrainedModel

log = logging.getLogger(__name__)


def build_configs(params: dict[str, Any], train: ImageSet, settings: Settings) -> tuple[ModelConfig, TrainConfig]:
    """The core's configs for a job's parameters (the fields of `JobCreate`) and its data."""
    model_config = ModelConfig(
        x_shape=tuple(train.image_shape), n_classes=train.n_classes, a_dim=params["a_dim"],
        z_dim=params["z_dim"], hidden=tuple(params["hidden"]), skip=params["skip"],
    )
    train_config = TrainConfig(
        epochs=params["epochs"], batch_size=params["batch_size"], labelled_batch_size=params["batch_size"],
        learning_rate=params["learning_rate"], mc_samples=params["mc_samples"], seed=params["seed"],
        checkpoint_every=settings.checkpoint_every, device=settings.device,
    )
    return model_config, train_config


class _Heartbeat(threading.Thread):
    """Beats the job's heartbeat every `interval` seconds and turns what it learns into flags that
    the trainer's `should_stop` reads for free between batches."""

    def __init__(self, store: JobStore, job_id: str, token: str, interval: float, should_exit: Callable[[], bool]):
        super().__init__(name=f"heartbeat-{job_id[:8]}", daemon=True)
        self.store, self.job_id, self.token, self.interval = store, job_id, token, interval
        self.should_exit = should_exit
        self.cancel, self.lost, self.exit = threading.Event(), threading.Event(), threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            if self.should_exit():
                self.exit.set()
            try:
                beat = self.store.heartbeat(self.job_id, self.token)
            except SQLAlchemyError as error:  # the database is away for a moment; the next beat retries
                log.warning("heartbeat of job %s failed: %s", self.job_id, error)
                continue
            if not beat.held:
                self.lost.set()
                return
            if beat.cancel_requested:
                self.cancel.set()

    def stopping(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set() or self.exit.is_set()

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=10)


class JobRunner:
    """Runs jobs against one job store; `run` returns what happened to the job."""

    def __init__(self, settings: Settings, store: JobStore):
        self.settings = settings
        self.store = store

    def run(self, job_id: str, should_exit: Callable[[], bool] = lambda: False) -> str:
        """Claims the job and trains it. `should_exit` says the worker is shutting down: the job
        then goes back to the queue and resumes elsewhere from its last checkpoint.
        Returns "skipped" (not claimable), "succeeded", "failed", "cancelled", "released" or "lost"."""
        token = new_id()
        if not self.store.claim(job_id, token):
            return "skipped"
        with self.store.sessions() as session:
            job = session.get(Job, job_id)
        heartbeat = _Heartbeat(self.store, job_id, token, self.settings.heartbeat_seconds, should_exit)
        heartbeat.start()
        checkpoint_dir = self.settings.checkpoints_dir / job_id
        try:
            outcome = self._train(job, token, checkpoint_dir, heartbeat)
        except TrainingCancelled:
            if heartbeat.lost.is_set():
                outcome = "lost"
            elif heartbeat.cancel.is_set():
                outcome = "cancelled" if self.store.cancelled(job_id, token) else "lost"
            else:
                outcome = "released" if self.store.release(job_id, token) else "lost"
        except Exception as error:  # any failure of this job is recorded on the job, not raised
            log.exception("job %s failed", job_id)
            message = str(error) or type(error).__name__
            outcome = "failed" if self.store.fail(job_id, token, message) else "lost"
        finally:
            heartbeat.finish()
        if outcome in ("succeeded", "failed", "cancelled"):
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        log.info("job %s: %s", job_id, outcome)
        return outcome

    def _train(self, job: Job, token: str, checkpoint_dir: Path, heartbeat: _Heartbeat) -> str:
        params = job.params
        train, test = load_dataset(self.settings, job.dataset)
        split = semi_supervised_split(train, params["labels_per_class"], params["seed"])
        model_config, train_config = build_configs(params, train, self.settings)
        trainer = Trainer(model_config, train_config, split, test=test)

        def on_epoch(report: EpochReport) -> None:
            try:
                if not self.store.record_progress(job.id, token, report.to_dict()):
                    heartbeat.lost.set()
            except SQLAlchemyError as error:
                log.warning("progress of job %s not recorded: %s", job.id, error)

        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        result = trainer.fit(on_epoch=on_epoch, should_stop=heartbeat.stopping, checkpoint_dir=checkpoint_dir)

        model_id = new_id()
        model_dir = self.settings.models_dir / model_id
        sha256 = save_model(model_dir, result.model, result.card)
        record = TrainedModel(
            id=model_id, name=job.name or default_model_name(job), job_id=job.id, dataset=job.dataset,
            created_at=utcnow(), config=model_config.to_dict(), metrics=result.card.get("metrics", {}),
            sha256=sha256,
        )
        if not self.store.succeed(job.id, token, record):
            shutil.rmtree(model_dir, ignore_errors=True)
            return "lost"
        return "succeeded"


def default_model_name(job: Job) -> str:
    p = job.params
    return f"{job.dataset}, {p['labels_per_class']} labels/class, {p['epochs']} epochs"


def configure_torch(settings: Settings) -> None:
    if settings.worker_torch_threads:
        torch.set_num_threads(settings.worker_torch_threads)


def run_job(job_id: str, settings: Settings, should_exit: Callable[[], bool] = lambda: False) -> str:
    """Runs one job with a job store of its own (what a Celery task calls)."""
    engine = make_engine(settings.database_url)
    try:
        store = JobStore.from_settings(make_sessionmaker(engine), settings)
        configure_torch(settings)
        return JobRunner(settings, store).run(job_id, should_exit)
    finally:
        engine.dispose()
