"""MLflow tracking of training jobs, when ADGM_MLFLOW_TRACKING_URI is set: each job is a run with
its parameters and per-epoch metrics; a succeeded job adds a grid of samples of every label, its
model files (safetensors + JSON) and a version of a registered model named after the job, which
the alias ADGM_MLFLOW_MODEL_ALIAS then points at.

A tracking server that is away must never fail or slow a job. So every call to MLflow (its import
included) runs on a thread of its own, in order; the job only hands it work. HTTP requests time
out after ADGM_MLFLOW_TIMEOUT_SECONDS and are not retried; the first failure is logged as a
warning and the tracking of that job stops there. Once the job's outcome is recorded, the worker
waits at most ADGM_MLFLOW_FLUSH_SECONDS for the thread to finish before it takes the next job.
mlflow is imported only here and only when configured (the optional extra `mlflow`).
"""

from __future__ import annotations

import logging
import math
import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from adgm_core.generation import sample
from adgm_core.images import png_grid
from adgm_core.model import ADGM
from store.config import Settings
from store.status import RunOutcome
from store.tables import Job

log = logging.getLogger(__name__)

JOB_TAG = "adgm.job_id"
GRID_COLUMNS = 8
# How a run ends for each outcome; a job released or lost goes on elsewhere, in the same run.
RUN_STATUS = {RunOutcome.SUCCEEDED: "FINISHED", RunOutcome.FAILED: "FAILED", RunOutcome.CANCELLED: "KILLED"}


def registered_name(name: str) -> str:
    """MLflow refuses '/' and ':' in a registered model's name."""
    return re.sub(r"[/:]", "-", name).strip() or "adgm"


class NoTracking:
    """What a job reports to when no tracking server is configured."""

    def epoch(self, metrics: dict) -> None:
        pass

    def succeeded(self, model: ADGM, model_dir: Path, model_id: str, name: str) -> None:
        pass

    def ended(self, outcome: RunOutcome) -> None:
        pass


class MlflowTracking:
    """One job's MLflow run, written from a background thread; see the module's docstring."""

    def __init__(self, settings: Settings, job: Job):
        self.settings = settings
        self.job = job
        self._calls: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._client = None
        self._run_id: str | None = None
        self._failed = False
        self._configure_http()
        self._thread = threading.Thread(target=self._work, name=f"mlflow-{job.id[:8]}", daemon=True)
        self._thread.start()
        self._calls.put(self._start_run)

    def _configure_http(self) -> None:
        # mlflow reads these at each request; the worker process is ours, so they are set outright
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(self.settings.mlflow_timeout_seconds)))
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        if self.settings.mlflow_tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for the opt-in

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._failed:
                continue
            try:
                call()
            except Exception as error:  # whatever MLflow raises, the job goes on without it
                self._failed = True
                log.warning("MLflow tracking of job %s stopped (%s: %s); the job goes on without it",
                            self.job.id, type(error).__name__, error)

    def _start_run(self) -> None:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = self.settings.mlflow_tracking_uri
        # registering a version also consults the process-wide URIs (else ./mlflow.db is made)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        self._client = client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(self.settings.mlflow_experiment)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else client.create_experiment(self.settings.mlflow_experiment))
        # a job resumed by another worker continues its run
        earlier = client.search_runs([experiment_id], filter_string=f"tags.`{JOB_TAG}` = '{self.job.id}'",
                                     max_results=1)
        if earlier:
            self._run_id = earlier[0].info.run_id
            return
        run = client.create_run(experiment_id, run_name=self.job.name or self.job.id,
                                tags={JOB_TAG: self.job.id, "adgm.dataset": self.job.dataset})
        self._run_id = run.info.run_id
        params = [Param(key, str(value)[:6000]) for key, value in sorted(self.job.params.items())]
        client.log_batch(self._run_id, params=params)

    def epoch(self, metrics: dict) -> None:
        """Logs an epoch's figures (None values skipped) at step = epoch."""
        from_report = {key: float(value) for key, value in metrics.items()
                       if key not in ("epoch", "epochs", "eta_seconds") and value is not None}
        self._calls.put(lambda: self._log_metrics(from_report, int(metrics["epoch"])))

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._client.log_batch(self._run_id, metrics=[Metric(key, value, stamp, step) for key, value in values.items()])

    def succeeded(self, model: ADGM, model_dir: Path, model_id: str, name: str) -> None:
        """Adds a grid of samples of every label, the model files and a registered version."""
        labels = [label for label in range(model.config.n_classes) for _ in range(GRID_COLUMNS)]
        grid_png = png_grid(sample(model.eval(), labels, seed=0).cpu().numpy(), columns=GRID_COLUMNS)
        self._calls.put(lambda: self._publish(model_dir, grid_png, model_id, name))

    def _publish(self, model_dir: Path, grid_png: bytes, model_id: str, name: str) -> None:
        from mlflow.exceptions import MlflowException

        client, run_id = self._client, self._run_id
        with tempfile.TemporaryDirectory(prefix="adgm-mlflow-") as directory:
            grid = Path(directory) / "samples.png"
            grid.write_bytes(grid_png)
            client.log_artifact(run_id, str(grid))
        client.log_artifacts(run_id, str(model_dir), "model")
        client.set_tag(run_id, "adgm.model_id", model_id)
        registered = registered_name(name)
        try:
            client.create_registered_model(registered)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(registered, source=source, run_id=run_id,
                                              tags={"adgm.model_id": model_id})
        client.set_registered_model_alias(registered, self.settings.mlflow_model_alias, version.version)

    def ended(self, outcome: RunOutcome) -> None:
        """Ends the run as the job ended (a job that goes on elsewhere leaves it open), then waits
        for the thread for ADGM_MLFLOW_FLUSH_SECONDS at most."""
        if (status := RUN_STATUS.get(outcome)) is not None:
            self._calls.put(lambda: self._client.set_terminated(self._run_id, status))
        self._calls.put(None)
        self._thread.join(timeout=self.settings.mlflow_flush_seconds)
        if self._thread.is_alive():
            log.warning("MLflow tracking of job %s did not finish within %.0f s; the worker goes on without it",
                        self.job.id, self.settings.mlflow_flush_seconds)


def tracking_for(settings: Settings, job: Job) -> NoTracking | MlflowTracking:
    return NoTracking() if settings.mlflow_tracking_uri is None else MlflowTracking(settings, job)
