"""The ONNX classifier against `Predictor.classify`, under onnxruntime: a model with batch norm and
a weight average, as the authors' recipe trains, on 100 real test digits, in any batch size."""

import json

import numpy as np
import onnxruntime
import pytest
from typer.testing import CliRunner

from adgm_core.checkpoint import save_model
from adgm_core.cli import app
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits, semi_supervised_split
from adgm_core.export import export_onnx
from adgm_core.predictor import Predictor
from adgm_core.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_offline_digits()


@pytest.fixture(scope="module")
def model_dir(digits, tmp_path_factory):
    """One epoch with batch norm (running statistics in eval mode), an EMA of the weights, draws of a of
    the classification term's own, and 6 draws of a at evaluation (what the served q(y|x) averages)."""
    split = semi_supervised_split(digits[0], labels_per_class=10, seed=0)
    config = ModelConfig(a_dim=8, z_dim=8, hidden=(64, 32), batch_norm=True)
    trainer = Trainer(config, TrainConfig(epochs=1, learning_rate=1e-3, ema_decay=0.99, classifier_samples=5,
                                              eval_samples=6), split)
    result = trainer.fit()
    directory = tmp_path_factory.mktemp("models") / "bn"
    save_model(directory, result.model, result.card)
    return directory


def run(onnx_bytes: bytes, images: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"image": images})[0]


def test_the_onnx_classifier_gives_the_predictors_probabilities(model_dir, digits):
    predictor = Predictor.from_directory(model_dir)
    images = digits[1].images[:100]
    expected, _novelty = predictor.classify(images)
    onnx_bytes = export_onnx(predictor)
    assert predictor._eps_y.shape[0] == 6  # the card's eval_samples
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.name == "image" and image.type == "tensor(uint8)" and image.shape[1:] == [28, 28]
    np.testing.assert_allclose(run(onnx_bytes, images), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(run(onnx_bytes, images[7:8]), expected[7:8], atol=1e-4, rtol=0)  # batch size free
    assert len(set(expected.argmax(1))) >= 5  # a trained classifier, not a constant answer
    # the export leaves the served model as it was
    np.testing.assert_array_equal(predictor.classify(images)[0], expected)


def test_adgm_export_writes_the_file(model_dir, digits, tmp_path):
    out = tmp_path / "classifier.onnx"
    result = CliRunner().invoke(app, ["export", str(model_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["onnx"] == str(out)
    expected, _ = Predictor.from_directory(model_dir).classify(digits[1].images[:10])
    np.testing.assert_allclose(run(out.read_bytes(), digits[1].images[:10]), expected, atol=1e-4, rtol=0)
    again = CliRunner().invoke(app, ["export", str(model_dir), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
