"""One training job from claim to model: the task function that the Celery worker and the
embedded worker both run. Nothing here knows about Celery or HTTP."""

import logging
import threading
from collections.abc import Callable

import torch
from sqlalchemy.exc import SQLAlchemyError

from adgm_core.baseline import supervised_baseline
from adgm_core.checkpoint import load_model
from adgm_core.cpu import check_bf16
from adgm_core.data import labelled_split, semi_supervised_split
from adgm_core.presets import configs_for
from adgm_core.trainer import EpochReport, Trainer, TrainingCancelled
from store.config import Settings
from store.datasets import class_names, load_labelled
from store.db import make_engine, make_sessionmaker, utcnow
from store.ids import new_id
from store.jobs import JobStore
from store.schema import migrate
from store.status import RunOutcome
from store.tables import Job, TrainedModel
from worker.tracking import MlflowTracking, NoTracking, tracking_for

log = logging.getLogger(__name__)


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

    def run(self, job_id: str, should_exit: Callable[[], bool] = lambda: False) -> RunOutcome:
        """Claims the job and trains it. `should_exit` says the worker is shutting down: the job
        then goes back to the queue and resumes elsewhere from its last checkpoint."""
        token = new_id()
        if not self.store.claim(job_id, token):
            return RunOutcome.SKIPPED
        with self.store.sessions() as session:
            job = session.get(Job, job_id)
        heartbeat = _Heartbeat(self.store, job_id, token, self.settings.heartbeat_seconds, should_exit)
        heartbeat.start()
        tracking = tracking_for(self.settings, job)
        try:
            outcome = self._train(job, token, heartbeat, tracking)
        except TrainingCancelled:
            if heartbeat.lost.is_set():
                outcome = RunOutcome.LOST
            elif heartbeat.cancel.is_set():
                outcome = RunOutcome.CANCELLED if self.store.cancelled(job_id, token) else RunOutcome.LOST
            else:
                outcome = RunOutcome.RELEASED if self.store.release(job_id, token) else RunOutcome.LOST
        except Exception as error:  # any failure of this job is recorded on the job, not raised
            log.exception("job %s failed", job_id)
            message = str(error) or type(error).__name__
            outcome = RunOutcome.FAILED if self.store.fail(job_id, token, message) else RunOutcome.LOST
        finally:
            heartbeat.finish()
        tracking.ended(outcome)  # after the outcome is recorded: MLflow never delays it
        if outcome.ends_job:
            self.settings.artifacts.delete_training_state(job_id)
        log.info("job %s: %s", job_id, outcome)
        return outcome

    def _train(self, job: Job, token: str, heartbeat: _Heartbeat, tracking: NoTracking | MlflowTracking) -> RunOutcome:
        params, artifacts = job.params, self.settings.artifacts
        train, test, _version = load_labelled(self.settings, self.store.sessions, job.dataset, job.dataset_version)
        if params.get("use_all_labels"):
            split = labelled_split(train)
        else:
            split = semi_supervised_split(train, params["labels_per_class"], params["seed"])
        model_config, train_config = configs_for(
            train, params, device=self.settings.device, checkpoint_every=self.settings.checkpoint_every
        )
        check_bf16(train_config.bf16, train_config.device)  # this worker's CPU: a Celery worker's is not the API's
        from_weights = params.get("init_model") and params.get("init_weights", True)  # adgm_core.warm_start
        init = self._initial_weights(params["init_model"]) if from_weights else None
        trainer = Trainer(model_config, train_config, split, test=test, init_weights=init)

        def on_epoch(report: EpochReport) -> None:
            tracking.epoch(report.to_dict())
            try:
                if not self.store.record_progress(job.id, token, report.to_dict()):
                    heartbeat.lost.set()
            except SQLAlchemyError as error:
                log.warning("progress of job %s not recorded: %s", job.id, error)

        checkpoint_dir = artifacts.training_state_dir(job.id)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        result = trainer.fit(on_epoch=on_epoch, should_stop=heartbeat.stopping, checkpoint_dir=checkpoint_dir)
        # did the unlabelled images help? the same labels, a plain classifier
        result.card["metrics"]["supervised_baseline"] = supervised_baseline(split, test).to_dict()
        result.card["class_names"] = class_names(self.store.sessions, job.dataset, train.n_classes)
        result.card["dataset_version"] = job.dataset_version

        model_id = new_id()
        sha256 = artifacts.publish_model(model_id, result.model, result.card)
        record = TrainedModel(
            id=model_id, name=job.name or default_model_name(job), job_id=job.id, dataset=job.dataset,
            created_at=utcnow(), config=model_config.to_dict(), metrics=result.card.get("metrics", {}),
            sha256=sha256,
        )
        if not self.store.succeed(job.id, token, record):
            artifacts.delete_model(model_id)
            return RunOutcome.LOST
        artifacts.models_changed()
        tracking.succeeded(result.model, artifacts.model_dir(model_id), model_id, record.name)
        return RunOutcome.SUCCEEDED

    def _initial_weights(self, model_id: str) -> dict:
        """The weights of the model a warm start begins from, checked against its record."""
        with self.store.sessions() as session:
            record = session.get(TrainedModel, model_id)
        if record is None:
            raise ValueError(f"the model to start from, {model_id}, no longer exists")
        model, _card = load_model(self.settings.artifacts.model_dir(model_id), expected_sha256=record.sha256)
        return model.state_dict()


def default_model_name(job: Job) -> str:
    p = job.params
    return f"{job.dataset}, {p['labels_per_class']} labels/class, {p['epochs']} epochs"


def configure_torch(settings: Settings) -> None:
    if settings.worker_torch_threads:
        torch.set_num_threads(settings.worker_torch_threads)


def run_job(job_id: str, settings: Settings, should_exit: Callable[[], bool] = lambda: False) -> RunOutcome:
    """Runs one job with a job store of its own (what a Celery task calls)."""
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        store = JobStore.from_settings(make_sessionmaker(engine), settings)
        configure_torch(settings)
        return JobRunner(settings, store).run(job_id, should_exit)
    finally:
        engine.dispose()
