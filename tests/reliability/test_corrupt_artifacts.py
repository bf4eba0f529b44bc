"""Promise 4: a model whose files were damaged after it was recorded answers a clear error naming
that model on every route that uses it, and the other models keep working.

The store holds two real trained models, A and B (B a copy of A's files under a record of its own).
A's files are then damaged on disk in one of several ways before the server first loads it. The
sha256 in A's record is what catches an altered weights file that still parses; the record's
config and a trial classification catch a model.json altered into something that still parses.
"""

import io
import json
import shutil

import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from store.db import make_engine, make_sessionmaker
from store.tables import TrainedModel
from image_files import encode


def truncate(directory):
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def flip_one_byte(directory):
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) - 10] ^= 0x01  # inside the last tensor: still a well-formed file
    weights.write_bytes(bytes(data))


def retrain_one_weight(directory):
    """A valid safetensors file of the right shapes whose values differ: only the checksum tells."""
    weights = directory / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, weights)


def empty(directory):
    (directory / "model.safetensors").write_bytes(b"")


def delete_weights(directory):
    (directory / "model.safetensors").unlink()


def garble_card(directory):
    (directory / "model.json").write_text('{"format": "adgm-serve/model", "config": ')


def edit_card(directory, edit):
    card = json.loads((directory / "model.json").read_text())
    edit(card)
    (directory / "model.json").write_text(json.dumps(card))


def drop_novelty_calibration(directory):
    edit_card(directory, lambda card: card.pop("novelty"))


def scramble_novelty_calibration(directory):
    edit_card(directory, lambda card: card.update(novelty="none"))


def reshape_in_card(directory):
    """Same number of pixels, other shape: the weights still fit, the record disagrees."""
    edit_card(directory, lambda card: card["config"].update(x_shape=[14, 56]))


def delete_directory(directory):
    shutil.rmtree(directory)


DAMAGE = [truncate, flip_one_byte, retrain_one_weight, empty, delete_weights, garble_card, drop_novelty_calibration,
          scramble_novelty_calibration, reshape_in_card, delete_directory]


@pytest.fixture
def two_models(trained_state, make_settings):
    """Settings on a store with models A (the session's trained one) and B (a copy, newer, so the
    default); returns (settings, id of A, id of B)."""
    settings = make_settings(trained_state)
    model_a = trained_state.model_id
    model_b = "b" * 32
    shutil.copytree(settings.artifacts.models_dir / model_a, settings.artifacts.models_dir / model_b)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine).begin() as session:
        original = session.get(TrainedModel, model_a)
        session.add(TrainedModel(
            id=model_b, name="copy", job_id=None, dataset=original.dataset, created_at=original.created_at.replace(
                year=original.created_at.year + 1), config=original.config, metrics=original.metrics,
            sha256=original.sha256,
        ))
    engine.dispose()
    return settings, model_a, model_b


@pytest.mark.parametrize("damage", DAMAGE, ids=[damage.__name__ for damage in DAMAGE])
def test_a_damaged_model_is_reported_by_name_and_the_others_serve(damage, two_models, start_client, test_digits):
    settings, model_a, model_b = two_models
    damage(settings.artifacts.models_dir / model_a)
    client = start_client(settings)
    digit = encode(test_digits[0][0])

    answers = {
        "sample": client.get("/sample", params={"label": 2, "model": model_a}),
        "classify": client.post("/classify", params={"model": model_a}, files={"files": ("d.png", digit)}),
        "analogies": client.post("/analogies", params={"model": model_a}, files={"file": ("d.png", digit)}),
    }
    for route, answer in answers.items():
        assert answer.status_code == 503, (route, answer.status_code, answer.text)
        detail = answer.json()["detail"]
        assert f"Model {model_a} cannot be loaded" in detail and "DELETE /models" in detail, (route, detail)
    if damage in (flip_one_byte, retrain_one_weight, truncate):
        assert "sha256" in answers["sample"].json()["detail"]

    # The record stays readable, and the other model is untouched.
    assert client.get(f"/models/{model_a}").json()["id"] == model_a
    sample = client.get("/sample", params={"label": 2, "n": 3, "model": model_b})
    assert sample.status_code == 200 and sample.headers["x-model-id"] == model_b
    assert Image.open(io.BytesIO(sample.content)).size == (2 + 3 * 30, 2 + 30)
    classified = client.post("/classify", params={"model": model_b}, files={"files": ("d.png", digit)})
    assert classified.status_code == 200
    assert sum(classified.json()["results"][0]["probabilities"]) == pytest.approx(1, abs=1e-4)

    # The damaged model can be deleted (even with its directory gone); then nothing refers to it.
    assert client.delete(f"/models/{model_a}").status_code == 204
    assert [model["id"] for model in client.get("/models").json()["models"]] == [model_b]
    assert client.get("/healthz").status_code == 200
    print("RELIABILITY corrupt-artifact", json.dumps({"damage": damage.__name__, "status": 503}))


def test_damage_after_loading_is_caught_at_the_next_start(two_models, start_client, test_digits):
    """A model already in memory keeps serving what was verified; a restarted server re-checks."""
    settings, model_a, _model_b = two_models
    first = start_client(settings)
    before = first.get("/sample", params={"label": 4, "seed": 1, "model": model_a})
    assert before.status_code == 200
    flip_one_byte(settings.artifacts.models_dir / model_a)
    assert first.get("/sample", params={"label": 4, "seed": 1, "model": model_a}).content == before.content
    restarted = start_client(settings)
    answer = restarted.get("/sample", params={"label": 4, "seed": 1, "model": model_a})
    assert answer.status_code == 503 and model_a in answer.json()["detail"]


def test_a_cut_off_model_write_is_not_a_model(two_models, start_client):
    """A worker killed while writing a model leaves a `.partial` staging directory and no record:
    nothing lists or serves it."""
    settings, model_a, model_b = two_models
    staging = settings.artifacts.models_dir / f".{'c' * 32}.deadbeef.partial"
    shutil.copytree(settings.artifacts.models_dir / model_a, staging)
    truncate(staging)
    client = start_client(settings)
    assert {model["id"] for model in client.get("/models").json()["models"]} == {model_a, model_b}
    assert client.get("/sample", params={"label": 1}).headers["x-model-id"] == model_b
    assert client.get(f"/models/{'c' * 32}").status_code == 404
