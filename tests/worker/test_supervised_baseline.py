"""Every model's card carries a supervised baseline fitted on exactly the labels its job trained
on: here those of an upload's label log at the job's version, not the file's."""

import io

import numpy as np

from adgm_core.baseline import fingerprint, fit_logistic_regression, predict
from adgm_core.checkpoint import load_model
from adgm_core.data import load_builtin
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.tables import Job, TrainedModel
from worker.training import JobRunner


def test_the_baseline_is_fitted_on_the_jobs_labels(make_settings, start_client):
    settings = make_settings()
    client = start_client(settings)
    train, test = load_builtin("digits5k")
    images, labels = train.images[:500], np.full(500, -1)
    first = [int(np.flatnonzero(train.labels[:500] == k)[0]) for k in range(10)]
    labels[first] = train.labels[first]
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels, test_images=test.images[:200], test_labels=test.labels[:200])
    dataset = client.post("/datasets", files={"file": ("d.npz", buffer.getvalue())}).json()
    added = [int(i) for i in range(100, 140)]
    version = client.post(f"/datasets/{dataset['id']}/labels",
                          json=[{"index": i, "label": int(train.labels[i])} for i in added]).json()["version"]
    job = client.post("/train", json={"dataset": dataset["id"], "epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4,
                                      "mc_samples": 1}).json()
    assert job["dataset_version"] == version == 2 and job["params"]["use_all_labels"]

    engine = make_engine(settings.database_url)
    store = JobStore(make_sessionmaker(engine))
    assert JobRunner(settings, store).run(job["id"]) == "succeeded"
    with store.sessions() as session:
        record = session.get(TrainedModel, session.get(Job, job["id"]).model_id)
    engine.dispose()
    baseline = record.metrics["supervised_baseline"]
    _model, card = load_model(settings.artifacts.model_dir(record.id))
    assert card["metrics"]["supervised_baseline"] == baseline

    labelled = np.sort(first + added)  # the job's labelled set: the file's ten and the log's forty
    assert baseline["n_labelled"] == 50
    assert baseline["labelled_fingerprint"] == fingerprint(images[labelled], train.labels[labelled])
    assert baseline["labelled_fingerprint"] != fingerprint(images[first], train.labels[first])
    fitted = fit_logistic_regression(images[labelled], train.labels[labelled], 10)
    assert baseline["test_accuracy"] == float((predict(fitted, test.images[:200]) == test.labels[:200]).mean())
    listed = client.get(f"/models/{record.id}").json()["supervised_baseline"]
    assert listed == baseline
