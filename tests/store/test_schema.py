"""Schema history: a database of release 0.1.0 upgrades intact, a new one gets exactly the tables
the code declares, and a database newer than the code is refused, on SQLite and PostgreSQL."""

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from app.main import create_app
from store import schema_cli
from store.db import Base, make_engine, make_sessionmaker
from store.jobs import JobStore
from store.labels import LabelLog
from store.schema import SchemaTooNew, current_revision, head_revision, migrate
from store.status import JobStatus
from store.tables import Dataset, Job, JobProgress, LabelStudioProject, LabelStudioTask, TrainedModel

HERE = Path(__file__).parent
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
PARAMS = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 2, "hidden": [32], "z_dim": 4, "a_dim": 4,
          "skip": True, "learning_rate": 1e-3, "batch_size": 100, "mc_samples": 1, "seed": 0, "name": "old"}


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def create_release_0_1_0(engine) -> None:
    """The tables exactly as release 0.1.0 made them, and rows of every kind as it wrote them."""
    lines = (HERE / f"release_0_1_0.{engine.dialect.name}.sql").read_text().splitlines()
    ddl = "\n".join(line for line in lines if not line.startswith("--"))
    statements = [statement for statement in ddl.split(";\n") if statement.strip()]
    rows = {
        "jobs": dict(id="a" * 32, name="old", status="succeeded", dataset="digits5k", params=json.dumps(PARAMS),
                     created_at=WHEN, started_at=WHEN, finished_at=WHEN, heartbeat_at=None, claim_token=None,
                     attempts=1, dispatched_at=None, cancel_requested=False, model_id="b" * 32, error=None),
        "job_progress": dict(job_id="a" * 32, epoch=1, epochs=2, elbo=-120.5, labelled_accuracy=0.5,
                             test_accuracy=0.75, examples_per_second=900.0, eta_seconds=3.0, learning_rate=1e-3,
                             created_at=WHEN),
        "models": dict(id="b" * 32, name="old model", job_id="a" * 32, dataset="digits5k", created_at=WHEN,
                       config=json.dumps({"x_shape": [28, 28], "n_classes": 10}),
                       metrics=json.dumps({"test_accuracy": 0.75}), sha256="c" * 64),
        "datasets": dict(id="d" * 32, name="upload", n_images=100, n_labelled=20, n_classes=10,
                         image_shape=json.dumps([28, 28]), n_test_images=0, sha256="e" * 64, created_at=WHEN),
    }
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
        for table, row in rows.items():
            columns = ", ".join(row)
            connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row)


def test_a_release_0_1_0_database_upgrades_and_reads_back_intact(engine):
    create_release_0_1_0(engine)
    assert migrate(engine) == head_revision()
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        job = session.get(Job, "a" * 32)
        assert job.status is JobStatus.SUCCEEDED and job.params == PARAMS and job.created_at == WHEN
        assert [(row.epoch, row.elbo, row.test_accuracy) for row in job.history] == [(1, -120.5, 0.75)]
        model = session.get(TrainedModel, "b" * 32)
        assert (model.job_id, model.metrics, model.sha256) == ("a" * 32, {"test_accuracy": 0.75}, "c" * 64)
        dataset = session.get(Dataset, "d" * 32)
        assert (dataset.n_images, dataset.n_labelled, dataset.image_shape) == (100, 20, [28, 28])
        # 0002: an old upload is at version 0 (its file's labels), named "0".."9", jobs without a version
        assert (dataset.version, dataset.class_names, dataset.names) == (0, None, [str(k) for k in range(10)])
        assert job.dataset_version is None
    # 0003: a Label Studio project links to the old upload, and its tasks to the upload's images
    with sessions.begin() as session:
        session.add(LabelStudioProject(project_id=1, dataset_id="d" * 32, label_config="<View/>", updated_at=WHEN))
        session.add(LabelStudioTask(dataset_id="d" * 32, task_id=7, image_index=3))
    with sessions() as session:
        assert session.get(LabelStudioProject, 1).dataset_id == "d" * 32
        assert session.get(LabelStudioTask, ("d" * 32, 7)).image_index == 3
    log = LabelLog(sessions)
    assert log.labels("d" * 32) == {}
    assert log.append("d" * 32, [(3, 7)], "ann") == 1 and log.labels("d" * 32) == {3: 7}
    store = JobStore(sessions)
    new = store.create(PARAMS, "digits5k", "new")
    assert [job_id for job_id in store.queued_ids()] == [new.id]
    assert migrate(engine) == head_revision()  # again: nothing to do


def test_a_new_database_gets_exactly_the_declared_tables(engine):
    migrate(engine)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    with make_sessionmaker(engine)() as session:
        assert session.query(JobProgress).count() == 0


def test_a_database_newer_than_the_code_is_refused(engine):
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew, match="revision '9999'.*newer version"):
        migrate(engine)


def test_the_api_refuses_to_start_on_a_newer_database(make_settings):
    settings = make_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="upgraded by a newer version"):
        with TestClient(create_app(settings)):
            pass


def test_the_adgm_db_command_upgrades_shows_and_refuses_a_newer_database(database_url):
    env = {"ADGM_DATABASE_URL": database_url}
    upgraded = CliRunner().invoke(schema_cli.app, ["upgrade"], env=env)
    assert upgraded.exit_code == 0 and f"database at {head_revision()}" in upgraded.output
    shown = CliRunner().invoke(schema_cli.app, ["current"], env=env)
    assert shown.exit_code == 0 and f"database: {head_revision()}  code: {head_revision()}" in shown.output
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    refused = CliRunner().invoke(schema_cli.app, ["upgrade"], env=env)
    assert refused.exit_code == 1 and "newer version" in refused.output
