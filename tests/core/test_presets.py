"""Presets: one definition, resolved the same way by the core and the CLI (the service uses the same
`resolve` + `configs_for`)."""

import json

import pytest
from typer.testing import CliRunner

from adgm_core.cli import app
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits
from adgm_core.presets import DEFAULT_PRESET, PARAMETERS, PRESETS, configs_for, resolve


@pytest.fixture(scope="module")
def digits():
    return load_offline_digits()


def test_the_three_presets_exist_and_quick_is_the_default():
    assert {"quick", "mnist-cpu", "paper"} <= set(PRESETS) and DEFAULT_PRESET == "quick"
    for preset in PRESETS.values():
        assert preset.description and preset.expected and preset.dataset in ("digits5k", "mnist")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_fills_every_parameter_and_builds_valid_configs(name, digits):
    params = resolve(name)
    assert set(params) == set(PARAMETERS)
    model_config, train_config = configs_for(digits[0], params, device="cpu", checkpoint_every=3)
    assert isinstance(model_config, ModelConfig) and isinstance(train_config, TrainConfig)
    assert train_config.checkpoint_every == 3 and model_config.x_shape == (28, 28)
    for key, value in params.items():
        if key != "labels_per_class":
            config = model_config if hasattr(model_config, key) else train_config
            assert getattr(config, key) == (tuple(value) if key == "hidden" else value), key


def test_explicit_values_override_the_preset_and_none_does_not():
    base = resolve("quick")
    params = resolve("quick", epochs=3, learning_rate=None, batch_norm=not base["batch_norm"])
    assert params["epochs"] == 3 and params["batch_norm"] is not base["batch_norm"]
    assert params["learning_rate"] == base["learning_rate"]
    with pytest.raises(ValueError, match="unknown training parameter"):
        resolve("quick", epoch=3)
    with pytest.raises(ValueError, match="unknown preset"):
        resolve("fast")


def test_the_cli_trains_what_the_core_resolves(tmp_path):
    """`adgm train --preset quick` with a few options: the saved card holds exactly the configs that
    `configs_for(resolve("quick", those options))` gives; options not given keep the preset's values."""
    out = tmp_path / "m"
    args = ["train", "--out", str(out), "--preset", "quick", "--epochs", "1", "--hidden", "16", "--z-dim", "2",
            "--a-dim", "2", "--labels-per-class", "2", "--mc-samples", "1", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model.json").read_text())
    train, _ = load_offline_digits()
    model_config, train_config = configs_for(
        train, resolve("quick", epochs=1, hidden=[16], z_dim=2, a_dim=2, labels_per_class=2, mc_samples=1),
        device="cpu")
    assert card["config"] == json.loads(json.dumps(model_config.to_dict()))
    assert card["train"] == json.loads(json.dumps(train_config.to_dict()))
    assert card["train"]["learning_rate"] == resolve("quick")["learning_rate"]
    assert 0 <= card["metrics"]["self_consistency"] <= 1 and len(card["metrics"]["self_consistency_per_label"]) == 10


def test_the_cli_names_an_unknown_preset():
    result = CliRunner().invoke(app, ["train", "--out", "/tmp/never", "--preset", "fast"])
    assert result.exit_code == 2 and "unknown preset 'fast'" in result.output
