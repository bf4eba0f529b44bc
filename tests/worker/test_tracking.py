"""MLflow tracking of real training jobs: with a `file:` tracking URI the run holds the job's
parameters, its metrics at every epoch, the sample grid and the model, registered under the job's
name with the alias (moved by the next job of that name); a tracking server that is away (refused,
or silent) fails nothing."""

import io
import logging
import socket

import pytest
from mlflow import MlflowClient
from PIL import Image

from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.schema import migrate
from store.tables import Job
from worker.training import JobRunner


@pytest.fixture(autouse=True)
def mlflow_environment(monkeypatch):
    """The tracker sets MLFLOW_* variables of the (worker) process: each test gets them back."""
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


TINY_JOB = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 2, "hidden": [32], "z_dim": 4, "a_dim": 4,
            "skip": False, "learning_rate": 1e-3, "batch_size": 100, "mc_samples": 1, "seed": 0, "name": "tiny"}


def run_job(settings, **changes) -> tuple[str, Job]:
    """Trains TINY_JOB (with `changes`) for real through the worker's code path."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = JobStore(make_sessionmaker(engine))
    job = store.create(dict(TINY_JOB, **changes), TINY_JOB["dataset"], TINY_JOB["name"])
    outcome = JobRunner(settings, store).run(job.id)
    with store.sessions() as session:
        job = session.get(Job, job.id)
    engine.dispose()
    return outcome, job


def test_a_job_is_a_run_with_metrics_samples_and_a_registered_model(tmp_path, make_settings, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written outside the tracking URI's directory
    uri = f"file://{tmp_path / 'mlruns'}"
    settings = make_settings(mlflow_tracking_uri=uri, mlflow_flush_seconds=120)
    outcome, job = run_job(settings)
    assert outcome == "succeeded"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("adgm-serve")
    (run,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.`adgm.job_id` = '{job.id}'")
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params["epochs"] == "2" and run.data.params["hidden"] == "[32]"
    assert run.data.tags["adgm.model_id"] == job.model_id
    for metric in ("elbo", "labelled_accuracy", "test_accuracy", "examples_per_second"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert [point.step for point in history] == [1, 2], metric
    recorded = [progress.elbo for progress in job.history]
    assert [point.value for point in client.get_metric_history(run.info.run_id, "elbo")] == pytest.approx(recorded)

    assert {item.path for item in client.list_artifacts(run.info.run_id)} == {"samples.png", "model"}
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    assert {item.path for item in client.list_artifacts(run.info.run_id, "model")} >= {"model/model.safetensors",
                                                                                         "model/model.json"}
    grid = Image.open(io.BytesIO(open(client.download_artifacts(run.info.run_id, "samples.png", str(downloads)), "rb").read()))
    assert grid.size == (2 + 8 * 30, 2 + 10 * 30)  # 8 samples of each of the 10 labels
    version = client.get_model_version_by_alias("tiny", "candidate")
    assert version.run_id == run.info.run_id and version.tags["adgm.model_id"] == job.model_id

    _, second = run_job(settings, epochs=1)  # the same name again: a new version, and the alias moves to it
    version = client.get_model_version_by_alias("tiny", "candidate")
    assert int(version.version) == 2 and version.tags["adgm.model_id"] == second.model_id
    assert sorted(path.name for path in tmp_path.iterdir()) == ["downloads", "mlruns", "state"]


def silent_server():
    """A socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


@pytest.mark.parametrize("away", ["refused", "silent"])
def test_a_tracking_server_that_is_away_fails_nothing(make_settings, unused_port, away, caplog):
    server = silent_server() if away == "silent" else None
    port = server.getsockname()[1] if server else unused_port
    try:
        with caplog.at_level(logging.WARNING, logger="worker.tracking"):
            outcome, job = run_job(make_settings(mlflow_tracking_uri=f"http://127.0.0.1:{port}",
                                                 mlflow_timeout_seconds=1, mlflow_flush_seconds=3))
    finally:
        if server:
            server.close()
    assert outcome == "succeeded" and job.model_id is not None
    assert [progress.epoch for progress in job.history] == [1, 2]
    assert any("MLflow tracking of job" in record.getMessage() for record in caplog.records), caplog.text
