"""A saved model answering: samples, classification with novelty, analogies, and the CLI around them."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from adgm_core.checkpoint import save_model
from adgm_core.cli import app
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits, semi_supervised_split
from adgm_core.images import png_grid
from adgm_core.predictor import Predictor
from adgm_core.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_offline_digits()


@pytest.fixture(scope="module")
def model_dir(digits, tmp_path_factory):
    """A real model, trained for a few epochs on the offline digits."""
    split = semi_supervised_split(digits[0], labels_per_class=10, seed=0)
    trainer = Trainer(ModelConfig(a_dim=8, z_dim=8, hidden=(64,)), TrainConfig(epochs=4, learning_rate=1e-3), split)
    result = trainer.fit()
    directory = tmp_path_factory.mktemp("models") / "tiny"
    save_model(directory, result.model, result.card)
    return directory


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.from_directory(model_dir)


def test_same_seed_same_pixels(predictor):
    first = predictor.sample([5] * 4, seed=3)
    assert first.dtype == np.uint8 and first.shape == (4, 28, 28)
    assert np.array_equal(first, predictor.sample([5] * 4, seed=3))
    assert not np.array_equal(first, predictor.sample([5] * 4, seed=4))
    assert len({img.tobytes() for img in first}) == 4  # each sample its own z


def test_classify_gives_distributions_and_novelty(predictor, digits):
    test = digits[1]
    probabilities, novelty = predictor.classify(test.images[:200])
    assert probabilities.shape == (200, 10)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    assert (probabilities.argmax(1) == test.labels[:200]).mean() > 0.3  # a 4-epoch model; quality: test_learning
    assert ((novelty >= 0) & (novelty <= 1)).all()
    again, _ = predictor.classify(test.images[:200])
    assert np.array_equal(probabilities, again)


def test_analogies_render_one_style_under_every_label(predictor, digits):
    grid = predictor.analogies(digits[1].images[0])
    assert grid.shape == (10, 28, 28) and grid.dtype == np.uint8
    assert len({img.tobytes() for img in grid}) == 10


def test_rejects_images_of_the_wrong_shape(predictor):
    with pytest.raises(ValueError, match="shape"):
        predictor.classify(np.zeros((1, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        predictor.sample([10], seed=0)


def test_cli_sample_classify_evaluate(model_dir, digits, tmp_path):
    runner = CliRunner()
    grid = tmp_path / "grid.png"
    result = runner.invoke(app, ["sample", str(model_dir), "--out", str(grid), "--label", "3", "--label", "7", "--n", "5"])
    assert result.exit_code == 0, result.output
    image = Image.open(grid)
    expected = Image.open(io.BytesIO(png_grid(np.zeros((10, 28, 28), np.uint8), columns=5)))
    assert image.size == expected.size

    digit = tmp_path / "digit.png"
    Image.fromarray(255 - digits[1].images[0]).resize((200, 200)).save(digit)  # dark on light, larger
    result = runner.invoke(app, ["classify", str(model_dir), str(digit)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4) and 0 <= answer["label"] < 10

    result = runner.invoke(app, ["evaluate", str(model_dir), "--data", "digits5k", "--samples", "5"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["test_error"] < 0.5


def test_cli_errors_say_what_to_do(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["sample", str(tmp_path / "none"), "--out", str(tmp_path / "x.png"), "--label", "1"])
    assert result.exit_code == 2 and "adgm train" in result.output
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "m"), "--data", "nonexistent.npz"])
    assert result.exit_code == 2 and "neither a built-in data set" in result.output
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "m"), "--labels-per-class", "1000"])
    assert result.exit_code == 2 and "requested" in result.output


def test_cli_train_writes_a_model(tmp_path):
    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--out", str(out), "--epochs", "1", "--hidden", "32", "--z-dim", "4",
                                 "--a-dim", "4", "--labels-per-class", "5"])
    assert result.exit_code == 0, result.output
    assert Predictor.from_directory(out).config.hidden == (32,)


def test_an_images_answer_does_not_depend_on_the_rest_of_the_batch(predictor, digits):
    images = digits[1].images[:30]
    together, novelty_together = predictor.classify(images)
    alone, novelty_alone = predictor.classify(images[7:8])
    np.testing.assert_allclose(alone[0], together[7], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(novelty_alone[0], novelty_together[7], atol=1e-6)


def test_classify_averages_the_draws_of_a_the_model_was_evaluated_with(model_dir, digits):
    """q(y | x) served = (1/S) Σ_s softmax q(y | a_s, x) over exactly the card's eval_samples draws, against
    a per-draw loop; a card without eval_samples (older models) keeps the 16 draws it was served with."""
    import torch

    from adgm_core.checkpoint import load_model
    from adgm_core.predictor import CLASSIFY_SAMPLES

    model, card = load_model(model_dir)
    assert card["train"]["eval_samples"] == 10
    images = digits[1].images[:50]
    for samples, served_card in [(7, {**card, "train": {**card["train"], "eval_samples": 7}}),
                                 (CLASSIFY_SAMPLES, {**card, "train": {}})]:
        predictor = Predictor(model, served_card)
        assert predictor._eps_y.shape == (samples, 1, model.config.a_dim)
        probabilities, _ = predictor.classify(images)
        x = torch.as_tensor(images.reshape(len(images), -1)).float() / 255
        with torch.no_grad():
            mu, log_var = model.infer_a(x)
            per_draw = [torch.softmax(model.classify(x, mu + torch.exp(0.5 * log_var) * eps[0]), -1)
                        for eps in predictor._eps_y]
        np.testing.assert_allclose(probabilities, torch.stack(per_draw).mean(0).numpy(), atol=1e-6)
