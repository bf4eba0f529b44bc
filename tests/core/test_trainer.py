"""The trainer: progress reports, exact resume, repeatability, cancellation."""

import numpy as np
import pytest
import torch

from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits, semi_supervised_split
from adgm_core.data.sets import SemiSupervisedSplit
from adgm_core.objective import Noise, semi_supervised_loss
from adgm_core.trainer import Trainer, TrainingCancelled

MODEL = ModelConfig(a_dim=4, z_dim=4, hidden=(32,))


@pytest.fixture(scope="module")
def digits():
    return load_offline_digits()


@pytest.fixture(scope="module")
def small_split(digits) -> SemiSupervisedSplit:
    split = semi_supervised_split(digits[0], labels_per_class=2, seed=0)
    return SemiSupervisedSplit(split.labelled_images, split.labelled_labels, split.unlabelled_images[:400],
                               split.n_classes, split.name)


def config(**overrides) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 50, "labelled_batch_size": 20, "checkpoint_every": 1,
                          "mc_samples": 2, "warmup_steps": 5, "eval_samples": 3, **overrides})


def parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_reports_every_epoch_with_figures(small_split, digits):
    reports = []
    result = Trainer(MODEL, config(), small_split, digits[1]).fit(on_epoch=reports.append)
    assert [r.epoch for r in reports] == [1, 2] and all(r.epochs == 2 for r in reports)
    for r in reports:
        assert np.isfinite(r.elbo) and r.elbo < 0
        assert 0 <= r.labelled_accuracy <= 1 and 0 <= r.test_accuracy <= 1
        assert r.examples_per_second > 0 and r.eta_seconds >= 0
    assert reports[-1].eta_seconds == 0
    assert result.card["dataset"]["n_labelled"] == 20
    assert result.card["dataset"]["alpha"] == pytest.approx(0.1 * 400 / 20)  # N = all 400 images
    assert 0 <= result.card["metrics"]["test_error"] <= 1
    quantiles = result.card["novelty"]["nll_quantiles"]
    assert quantiles == sorted(quantiles) and quantiles[0] > 0


def test_same_seed_same_run_other_seed_other_run(small_split):
    first = _trained_parameters(small_split, seed=0)
    again = _trained_parameters(small_split, seed=0)
    other = _trained_parameters(small_split, seed=1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def _trained(split, seed):
    trainer = Trainer(MODEL, config(epochs=1, seed=seed), split)
    trainer.fit()
    return trainer


def _trained_parameters(split, seed):
    return parameters(_trained(split, seed))


def test_resume_equals_uninterrupted_run(small_split, tmp_path):
    uninterrupted = Trainer(MODEL, config(epochs=3), small_split)
    uninterrupted.fit()

    first = Trainer(MODEL, config(epochs=1), small_split)
    first.fit(checkpoint_dir=tmp_path)  # killed after epoch 1, say
    resumed = Trainer(MODEL, config(epochs=3), small_split)
    reports = []
    resumed.fit(on_epoch=reports.append, checkpoint_dir=tmp_path)

    assert [r.epoch for r in reports] == [2, 3]
    expected, actual = parameters(uninterrupted), parameters(resumed)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    assert [r.elbo for r in resumed.reports] == [r.elbo for r in uninterrupted.reports]
    assert len(list(tmp_path.glob("state-*.safetensors"))) == 1  # older states are removed


def test_resume_refuses_a_state_of_another_model(small_split, tmp_path):
    Trainer(MODEL, config(epochs=1), small_split).fit(checkpoint_dir=tmp_path)
    other = Trainer(ModelConfig(a_dim=4, z_dim=4, hidden=(16,)), config(epochs=2), small_split)
    with pytest.raises(ValueError, match="another model configuration"):
        other.fit(checkpoint_dir=tmp_path)


def test_should_stop_cancels_between_batches(small_split):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(TrainingCancelled):
        Trainer(MODEL, config(), small_split).fit(should_stop=should_stop)
    assert len(calls) == 4  # polled before every batch, stopped at the fourth


def test_learning_rate_schedule_of_the_authors(small_split):
    trainer = Trainer(MODEL, TrainConfig.paper(), small_split)
    assert trainer.learning_rate(1) == trainer.learning_rate(200) == pytest.approx(3e-4)
    assert trainer.learning_rate(201) == pytest.approx(3e-4 * 0.75)
    assert trainer.learning_rate(401) == pytest.approx(3e-4 * 0.75**2)


def test_rejects_data_of_another_shape(small_split):
    with pytest.raises(ValueError, match="model expects"):
        Trainer(ModelConfig(x_shape=(32, 32)), config(), small_split)


def test_bf16_autocast_computes_the_same_bound_within_bf16_precision(small_split):
    """The fast path (bf16 networks, float32 sums) against the plain float32 path, same weights and noise."""
    trainer = Trainer(MODEL, config(), small_split)
    x = (torch.rand(40, 784, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    y = torch.arange(40) % 10
    noise = Noise.draw(trainer.model, 40, 40, torch.Generator().manual_seed(1), "cpu")
    plain = semi_supervised_loss(trainer.model, x, y, x, noise, alpha=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = semi_supervised_loss(trainer.model, x, y, x, noise, alpha=1.0)
    assert fast.loss.dtype == torch.float32
    assert torch.allclose(fast.loss, plain.loss, rtol=2e-2)
    assert torch.allclose(fast.elbo, plain.elbo, rtol=2e-2)


@pytest.mark.slow
def test_compiled_step_computes_the_same_bound_and_gradient(small_split):
    """torch.compile (the GPU fast path) against eager: same loss and the same gradient for every weight.

    Gradients, not weights after an Adam step: Adam's first update is lr * g / (|g| + eps), about lr * sign(g),
    so float reassociation on a gradient near zero could flip a weight by 2 * lr without anything being wrong.
    """
    eager = Trainer(MODEL, config(epochs=1), small_split)
    compiled = Trainer(MODEL, config(epochs=1, compile=True), small_split)
    x = (torch.rand(20, 784, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    y = torch.arange(20) % 10
    losses = []
    for trainer in (eager, compiled):
        noise = Noise.draw(trainer.model, 20, 20, torch.Generator().manual_seed(1), "cpu")
        trainer.optimizer.zero_grad()
        losses.append(trainer.step_fn(x, y, x, noise, 1.0).loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-3)
    compiled_params = dict(compiled.model.named_parameters())
    for name, weight in eager.model.named_parameters():
        scale = weight.grad.abs().max().item()
        torch.testing.assert_close(compiled_params[name].grad, weight.grad, rtol=1e-4, atol=1e-4 * scale + 1e-9)
