"""The API's torch-free inference (adgm_core.numpy_predictor) against `Predictor`, the torch
computation it replaces: class probabilities, novelty, samples and analogies of trained models, at
batch sizes 1 and 100, for batch norm, the ADGM without skip and every activation; and the same
checks of a damaged checkpoint as `load_model`."""

import hashlib

import numpy as np
import pytest
import torch

from adgm_core.checkpoint import WEIGHTS_FILE, CheckpointError, save_model
from adgm_core.config import ACTIVATIONS, ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits, semi_supervised_split
from adgm_core.generation import _decode
from adgm_core.model import ADGM
from adgm_core.numpy_model import load_numpy_model, parameter_layout, sigmoid
from adgm_core.numpy_predictor import NumpyPredictor
from adgm_core.predictor import Predictor
from adgm_core.trainer import Trainer

CONFIGS = {
    "batch-norm": ModelConfig(a_dim=8, z_dim=8, hidden=(64, 32), batch_norm=True),
    "adgm-gelu": ModelConfig(a_dim=3, z_dim=2, hidden=(32,), skip=False, activation="gelu"),
    "softplus-deterministic-a": ModelConfig(a_dim=4, z_dim=4, hidden=(32, 32, 16), activation="softplus",
                                            deterministic_a=True),
    "elu": ModelConfig(a_dim=4, z_dim=4, hidden=(32,), activation="elu"),
    "tanh": ModelConfig(a_dim=4, z_dim=20, hidden=(32,), activation="tanh"),
}


@pytest.fixture(scope="module")
def digits():
    return load_offline_digits()


@pytest.fixture(scope="module", params=list(CONFIGS))
def model_dir(request, digits, tmp_path_factory):
    """One epoch of training (batch-norm statistics, weights away from their initial values), 6 draws of a."""
    split = semi_supervised_split(digits[0], labels_per_class=10, seed=0)
    result = Trainer(CONFIGS[request.param], TrainConfig(epochs=1, learning_rate=1e-3, eval_samples=6), split).fit()
    directory = tmp_path_factory.mktemp("models") / request.param
    save_model(directory, result.model, result.card)
    return directory


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
def test_the_parameter_layout_is_the_torch_models_state_dict(config):
    expected = {name: tuple(tensor.shape) for name, tensor in ADGM(config).state_dict().items()}
    assert parameter_layout(config) == expected


@pytest.mark.parametrize("n", [1, 100])
def test_probabilities_and_novelty_are_the_predictors(model_dir, digits, n):
    torch_predictor, numpy_predictor = Predictor.from_directory(model_dir), NumpyPredictor.from_directory(model_dir)
    images = digits[1].images[:n]
    expected_p, expected_novelty = torch_predictor.classify(images)
    p, novelty = numpy_predictor.classify(images)
    assert p.shape == expected_p.shape and p.dtype == np.float32
    np.testing.assert_allclose(p, expected_p, rtol=0, atol=1e-5)
    np.testing.assert_allclose(novelty, expected_novelty, rtol=0, atol=1e-5)
    if n == 100:  # a trained model: the comparison is not between two constant answers
        assert len(set(expected_p.argmax(1))) >= 3 and np.ptp(expected_novelty) > 0.1


@pytest.mark.parametrize("n", [1, 100])
def test_samples_are_the_predictors(model_dir, n):
    """The pixel means within 1e-5; the served uint8 pixels equal but where a mean lies within float
    rounding of a half grey level."""
    torch_predictor, numpy_predictor = Predictor.from_directory(model_dir), NumpyPredictor.from_directory(model_dir)
    K = torch_predictor.config.n_classes
    labels = [k % K for k in range(n)]
    for seed in (0, 7):
        expected, served = torch_predictor.sample(labels, seed), numpy_predictor.sample(labels, seed)
        assert served.shape == expected.shape and served.dtype == np.uint8
        assert np.abs(served.astype(int) - expected).max() <= 1 and (served != expected).mean() < 1e-3
    z = torch.randn((n, torch_predictor.config.z_dim), generator=torch.Generator().manual_seed(3))
    y = torch.as_tensor(labels)
    with torch.no_grad():
        expected_means = _decode(torch_predictor.model, y, z).numpy()
    model = numpy_predictor.model
    a = model.generate_a(None, np.asarray(labels), z.numpy())[0] if model.config.skip else None
    np.testing.assert_allclose(sigmoid(model.generate_x(np.asarray(labels), z.numpy(), a)), expected_means,
                               rtol=0, atol=1e-5)


def test_analogies_are_the_predictors(model_dir, digits):
    torch_predictor, numpy_predictor = Predictor.from_directory(model_dir), NumpyPredictor.from_directory(model_dir)
    for image in digits[1].images[:5]:
        expected, served = torch_predictor.analogies(image), numpy_predictor.analogies(image)
        assert served.shape == expected.shape and np.abs(served.astype(int) - expected).max() <= 1
        assert (served != expected).mean() < 1e-3


def test_every_activation_is_covered():
    assert {config.activation for config in CONFIGS.values()} == set(ACTIVATIONS)


def test_a_damaged_checkpoint_is_refused_as_load_model_refuses_it(tmp_path):
    config = CONFIGS["elu"]
    model = ADGM(config)
    save_model(tmp_path / "m", model, {"novelty": {"nll_quantiles": [0.0, 1.0], "samples": 1}})
    load_numpy_model(tmp_path / "m")
    weights = tmp_path / "m" / WEIGHTS_FILE
    with pytest.raises(CheckpointError, match="sha256"):
        load_numpy_model(tmp_path / "m", expected_sha256="0" * 64)
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="sha256"):
        load_numpy_model(tmp_path / "m")
    other = ADGM(ModelConfig(a_dim=5, z_dim=4, hidden=(32,), activation="elu"))
    save_model(tmp_path / "wrong", other, {})
    (tmp_path / "m" / WEIGHTS_FILE).write_bytes((tmp_path / "wrong" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="has shape"):  # checksum right, shapes not the config's
        load_numpy_model(tmp_path / "m", expected_sha256=hashlib.sha256(weights.read_bytes()).hexdigest())
