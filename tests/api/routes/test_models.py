"""GET /models, GET /models/{id}, DELETE /models/{id}; the default model and corrupt artifacts."""

import shutil
from datetime import timedelta

import numpy as np

from app import served_model
from store.ids import new_id
from store.tables import TrainedModel


def add_copy_of_model(client, model_id: str, newer: bool = True, announce: bool = True) -> str:
    """What a worker elsewhere does: a new model's files, then its record, then (`announce`) a new
    models version, while the API runs."""
    runtime = client.app.state.runtime
    copy_id = new_id()
    shutil.copytree(runtime.settings.artifacts.models_dir / model_id, runtime.settings.artifacts.models_dir / copy_id)
    with runtime.sessions() as session:
        original = session.get(TrainedModel, model_id)
        session.add(TrainedModel(
            id=copy_id, name="copy", job_id=None, dataset=original.dataset, config=original.config,
            metrics=original.metrics, sha256=original.sha256,
            created_at=original.created_at + (timedelta(seconds=1) if newer else -timedelta(seconds=1)),
        ))
        session.commit()
    if announce:
        runtime.settings.artifacts.models_changed()
    return copy_id


def test_no_models_yet(client):
    assert client.get("/models").json() == {"models": [], "default": None}


def test_the_trained_model_is_listed_and_described(model_client, trained_state):
    listing = model_client.get("/models").json()
    assert listing["default"] == trained_state.model_id
    [model] = listing["models"]
    assert model["id"] == trained_state.model_id and model["is_default"]
    assert model["job_id"] == trained_state.job_id and model["dataset"] == "digits5k"
    assert model["name"] == "tiny"
    assert model["config"] == {"x_shape": [28, 28], "n_classes": 10, "a_dim": 4, "z_dim": 4, "hidden": [32],
                               "activation": "relu", "skip": False, "batch_norm": False, "deterministic_a": False}
    assert model["metrics"]["epochs"] == 2 and 0.0 <= model["metrics"]["test_error"] <= 1.0
    assert model_client.get(f"/models/{model['id']}").json() == model
    job = model_client.get(f"/jobs/{trained_state.job_id}").json()
    assert job["model_id"] == model["id"] and job["status"] == "succeeded"


def test_the_supervised_baseline_on_the_same_labels_is_shown(model_client, trained_state):
    from adgm_core.baseline import supervised_baseline
    from adgm_core.data import load_builtin, semi_supervised_split

    [model] = model_client.get("/models").json()["models"]
    train, test = load_builtin("digits5k")  # the tiny job's labels: 10 per class drawn with seed 0
    expected = supervised_baseline(semi_supervised_split(train, 10, 0), test).to_dict()
    assert model["supervised_baseline"] == model["metrics"]["supervised_baseline"] == expected
    assert expected["kind"] == "logistic_regression" and expected["n_labelled"] == 100
    assert 0.6 < expected["test_accuracy"] < 0.9


def test_a_model_finished_elsewhere_becomes_the_default_without_restart(model_client, trained_state):
    assert model_client.get("/sample", params={"label": 0}).headers["x-model-id"] == trained_state.model_id
    newer = add_copy_of_model(model_client, trained_state.model_id)
    listing = model_client.get("/models").json()
    assert listing["default"] == newer
    assert [m["id"] for m in listing["models"]] == [newer, trained_state.model_id]
    assert [m["is_default"] for m in listing["models"]] == [True, False]
    assert model_client.get("/sample", params={"label": 0}).headers["x-model-id"] == newer
    older = model_client.get("/sample", params={"label": 0, "model": trained_state.model_id})
    assert older.headers["x-model-id"] == trained_state.model_id


def test_delete_removes_record_and_files(model_client, trained_state):
    runtime = model_client.app.state.runtime
    model_id = trained_state.model_id
    assert model_client.get("/sample", params={"label": 3}).status_code == 200  # loaded in the cache
    response = model_client.delete(f"/models/{model_id}")
    assert response.status_code == 204 and response.content == b""
    assert not (runtime.settings.artifacts.models_dir / model_id).exists()
    assert list(runtime.settings.artifacts.models_dir.iterdir()) == []
    assert model_client.get(f"/models/{model_id}").status_code == 404
    assert model_client.get("/models").json() == {"models": [], "default": None}
    assert model_client.get("/sample", params={"label": 3}).status_code == 503
    assert model_client.get("/sample", params={"label": 3, "model": model_id}).status_code == 404
    again = model_client.delete(f"/models/{model_id}")
    assert again.status_code == 404 and again.json()["detail"] == f"Model {model_id} does not exist."


def test_deleting_the_default_falls_back_to_the_next_newest(model_client, trained_state):
    newer = add_copy_of_model(model_client, trained_state.model_id)
    assert model_client.delete(f"/models/{newer}").status_code == 204
    assert model_client.get("/models").json()["default"] == trained_state.model_id


def test_a_second_api_process_serves_a_new_or_deleted_model_from_its_next_request(
        model_client, start_client, trained_state, test_digits, encode):
    other = start_client(model_client.app.state.runtime.settings)  # another API process on the same store
    files = [("files", ("d.png", encode(test_digits[0][0]), "image/png"))]
    served = lambda client, **params: client.post("/classify", files=files, params=params)  # noqa: E731
    assert {served(client).json()["model_id"] for client in (model_client, other)} == {trained_state.model_id}
    newer = add_copy_of_model(model_client, trained_state.model_id)  # a worker publishes a model
    assert served(other).json()["model_id"] == newer
    assert model_client.delete(f"/models/{newer}").status_code == 204
    assert served(other).json()["model_id"] == trained_state.model_id
    assert other.get("/sample", params={"label": 1}).headers["x-model-id"] == trained_state.model_id
    assert other.get("/v2/models/default").json()["versions"] == [trained_state.model_id]
    assert served(other, model=newer).status_code == 404
    assert other.get(f"/v2/models/{newer}").status_code == 404


def test_the_served_model_is_asked_again_when_the_models_version_changes_or_the_answer_is_old(
        model_client, trained_state, test_digits, encode, monkeypatch):
    """Which model a request means is kept until the models version changes (app.served_model);
    a record whose writer died before writing a new version is seen once the answer is old."""
    files = [("files", ("d.png", encode(test_digits[0][0]), "image/png"))]
    served = lambda: model_client.post("/classify", files=files).json()["model_id"]  # noqa: E731
    monkeypatch.setattr(served_model, "RECHECK_SECONDS", 3600.0)
    assert served() == trained_state.model_id
    unannounced = add_copy_of_model(model_client, trained_state.model_id, announce=False)
    assert served() == trained_state.model_id  # the answer kept: the job store was not asked
    model_client.app.state.runtime.settings.artifacts.models_changed()
    assert served() == unannounced
    newer = add_copy_of_model(model_client, unannounced, announce=False)
    assert served() == unannounced
    monkeypatch.setattr(served_model, "RECHECK_SECONDS", 0.0)
    assert served() == newer


def test_unknown_and_malformed_model_ids(client):
    unknown = new_id()
    assert client.get(f"/models/{unknown}").status_code == 404
    assert client.delete(f"/models/{unknown}").status_code == 404
    for bad in ("abc", unknown.upper(), "..%2F..%2Fjobs", unknown[:-1] + "g"):
        assert client.get(f"/models/{bad}").status_code in (404, 422)
        assert client.delete(f"/models/{bad}").status_code in (404, 405, 422)


def test_a_corrupt_model_is_reported_and_the_others_keep_working(model_client, trained_state, encode):
    runtime = model_client.app.state.runtime
    healthy = add_copy_of_model(model_client, trained_state.model_id, newer=False)
    weights = runtime.settings.artifacts.models_dir / trained_state.model_id / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    response = model_client.get("/sample", params={"label": 1})  # the default is the corrupt one
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert trained_state.model_id in detail and "sha256" in detail
    assert str(runtime.settings.artifact_dir) not in detail  # no server paths in answers
    digit = encode(np.zeros((28, 28), np.uint8))
    classify = model_client.post("/classify", files={"files": ("digit.png", digit, "image/png")})
    assert classify.status_code == 503 and trained_state.model_id in classify.json()["detail"]
    response = model_client.get("/sample", params={"label": 1, "model": healthy})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert model_client.get("/models").status_code == 200
