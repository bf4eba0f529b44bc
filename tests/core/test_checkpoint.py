"""Checkpoints: round trip, atomic writes, and a clear error for every kind of damage."""

import json

import pytest
import torch

from adgm_core.checkpoint import CARD_FILE, WEIGHTS_FILE, CheckpointError, load_model, save_model
from adgm_core.config import ModelConfig
from adgm_core.model import ADGM

CONFIG = ModelConfig(x_shape=(6, 5), n_classes=3, a_dim=2, z_dim=3, hidden=(8, 4), skip=True)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = ADGM(CONFIG)
    directory = tmp_path / "model"
    sha256 = save_model(directory, model, {"metrics": {"test_error": 0.5}})
    return model, directory, sha256


def test_round_trip_keeps_weights_config_and_card(saved):
    model, directory, sha256 = saved
    loaded, card = load_model(directory, expected_sha256=sha256)
    assert loaded.config == CONFIG
    assert card["metrics"] == {"test_error": 0.5} and card["sha256"] == sha256
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    assert sorted(p.name for p in directory.iterdir()) == sorted([WEIGHTS_FILE, CARD_FILE])
    assert not list(directory.parent.glob(".*partial"))


def test_weights_file_is_safetensors_not_pickle(saved):
    _, directory, _ = saved
    header_length = int.from_bytes((directory / WEIGHTS_FILE).read_bytes()[:8], "little")
    header = json.loads((directory / WEIGHTS_FILE).read_bytes()[8:8 + header_length])
    assert "q_a.mu.weight" in header


def test_models_are_written_once(saved):
    model, directory, _ = saved
    with pytest.raises(CheckpointError, match="already exists"):
        save_model(directory, model, {})


def test_truncated_weights(saved):
    _, directory, _ = saved
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(directory)


def test_altered_weights_detected_by_checksum(saved):
    _, directory, _ = saved
    data = bytearray((directory / WEIGHTS_FILE).read_bytes())
    data[-5] ^= 0xFF
    (directory / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="altered or truncated"):
        load_model(directory)


def test_unreadable_weights_without_checksum(saved):
    _, directory, _ = saved
    card = json.loads((directory / CARD_FILE).read_text())
    del card["sha256"]
    (directory / CARD_FILE).write_text(json.dumps(card))
    (directory / WEIGHTS_FILE).write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(directory)


def test_corrupt_card(saved):
    _, directory, _ = saved
    (directory / CARD_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(directory)


def test_missing_files(saved, tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path / "nowhere")
    _, directory, _ = saved
    (directory / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_model(directory)


def test_weights_that_do_not_fit_the_config(saved):
    _, directory, _ = saved
    card = json.loads((directory / CARD_FILE).read_text())
    card["config"]["z_dim"] = 7
    (directory / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(directory)


def test_other_major_version_refused(saved):
    _, directory, _ = saved
    card = json.loads((directory / CARD_FILE).read_text())
    card["version"] = "9.0.0"
    (directory / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="9.0.0"):
        load_model(directory)
