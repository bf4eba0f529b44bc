"""The trainer: progress reports, exact resume, repeatability, cancellation."""

import copy

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


RECIPE = dict(lr_schedule="cosine", lr_warmup_steps=3, ema_decay=0.9, grad_clip_value=1.0, weight_prior=True,
              classifier_shift=2, classifier_samples=4)


@pytest.mark.parametrize("recipe", [{}, RECIPE], ids=["defaults", "recipe-switches"])
@pytest.mark.parametrize("model_config", [MODEL, ModelConfig(a_dim=4, z_dim=4, hidden=(32,), batch_norm=True)],
                         ids=["plain", "batch-norm"])
def test_resume_equals_uninterrupted_run(small_split, tmp_path, recipe, model_config):
    uninterrupted = Trainer(model_config, config(epochs=3, **recipe), small_split)
    uninterrupted.fit()

    first = Trainer(model_config, config(epochs=3, **recipe), small_split)
    with pytest.raises(TrainingCancelled):  # killed during epoch 2, say
        first.fit(checkpoint_dir=tmp_path, should_stop=lambda: first.step == first.steps_per_epoch + 2)
    resumed = Trainer(model_config, config(epochs=3, **recipe), small_split)
    reports = []
    resumed.fit(on_epoch=reports.append, checkpoint_dir=tmp_path)

    assert [r.epoch for r in reports] == [2, 3]
    expected, actual = parameters(uninterrupted), parameters(resumed)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    served, served_resumed = uninterrupted.served_model.state_dict(), resumed.served_model.state_dict()
    assert all(torch.equal(served[k], served_resumed[k]) for k in served)
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
    epoch_start = lambda epoch: (epoch - 1) * trainer.steps_per_epoch  # noqa: E731  (steps count from 0)
    assert trainer.learning_rate(0) == trainer.learning_rate(epoch_start(201) - 1) == pytest.approx(3e-4)
    assert trainer.learning_rate(epoch_start(201)) == pytest.approx(3e-4 * 0.75)
    assert trainer.learning_rate(epoch_start(401)) == pytest.approx(3e-4 * 0.75**2)


def test_warm_up_then_cosine_decay(small_split):
    trainer = Trainer(MODEL, config(epochs=10, learning_rate=2e-3, lr_schedule="cosine", lr_warmup_steps=4), small_split)
    total = 10 * trainer.steps_per_epoch  # 80 steps
    rates = [trainer.learning_rate(step) for step in range(total)]
    assert rates[:4] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3])  # linear warm-up to the peak
    decay = rates[4:]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert rates[4 + (total - 4) // 2] == pytest.approx(1e-3)  # half the peak half-way through the decay
    assert rates[-1] < 2e-3 * 1e-3


def test_gradients_are_clipped_elementwise_after_the_norm(small_split):
    """The last step's gradients stay in .grad after fit: with the clip every element lies within ±v."""
    v = 1e-3
    plain = Trainer(MODEL, config(epochs=1, grad_clip=None), small_split)
    plain.fit()
    clipped = Trainer(MODEL, config(epochs=1, grad_clip_value=v), small_split)
    clipped.fit()
    largest = lambda trainer: max(p.grad.abs().max().item() for p in trainer.model.parameters())  # noqa: E731
    assert largest(plain) > 10 * v  # the clip has work to do
    assert largest(clipped) == pytest.approx(v)


def test_moving_average_of_the_weights_is_what_is_evaluated_and_returned(small_split):
    """The EMA against the recurrence computed here from the live weights seen around every step."""
    decay = 0.9
    trainer = Trainer(MODEL, config(epochs=1, ema_decay=decay), small_split)
    polls = []
    result = trainer.fit(should_stop=lambda: bool(polls.append(parameters(trainer))))  # polled before each step
    expected, after = polls[0], polls[1:] + [parameters(trainer)]  # initial weights; weights after steps 1..T
    for t, weights in enumerate(after):
        d = min(decay, (1 + t) / (10 + t))
        for k, v in expected.items():
            v.mul_(d).add_(weights[k], alpha=1 - d)
    assert len(after) == trainer.steps_per_epoch
    assert result.model is trainer.ema and result.model is not trainer.model
    for k, v in result.model.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    assert not torch.equal(result.model.state_dict()["q_a.mu.weight"], trainer.model.state_dict()["q_a.mu.weight"])


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


def test_fused_adam_moves_every_weight_as_the_per_parameter_adam(small_split):
    """The trainer's Adam is fused on the CPU too (one kernel over all weights: 2.3 ms a step against 7.8 ms
    for the quick preset's model on one thread): from the same gradients, at changing rates and gradient
    scales, it moves every weight as torch's per-parameter loop does, to float32 rounding."""
    trainer = Trainer(MODEL, config(epochs=1), small_split)
    assert trainer.optimizer.param_groups[0]["fused"]
    reference_model = copy.deepcopy(trainer.model)
    reference = torch.optim.Adam(reference_model.parameters(), lr=trainer.config.learning_rate, foreach=False)
    generator = torch.Generator().manual_seed(0)
    for step in range(6):
        for optimizer in (trainer.optimizer, reference):
            optimizer.param_groups[0]["lr"] = 1e-3 * (step + 1)
        for fused_weight, weight in zip(trainer.model.parameters(), reference_model.parameters()):
            weight.grad = torch.randn(weight.shape, generator=generator) * 10.0 ** -step
            fused_weight.grad = weight.grad.clone()
        trainer.optimizer.step()
        reference.step()
    for fused_weight, weight in zip(trainer.model.parameters(), reference_model.parameters()):
        torch.testing.assert_close(fused_weight, weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize("shift", [0, 2])
def test_the_classification_term_gets_translated_copies_of_the_labelled_images(small_split, shift):
    trainer = Trainer(MODEL, config(epochs=1, classifier_shift=shift), small_split)
    trainer._binarize = lambda images: (images > 127).float()  # deterministic, so copies can be compared
    seen = []
    step = trainer.step_fn
    trainer.step_fn = lambda x_l, y_l, x_u, noise, beta, x_c: seen.append((x_l, x_c)) or step(x_l, y_l, x_u, noise,
                                                                                                beta, x_c)
    trainer.fit()
    assert len(seen) == trainer.steps_per_epoch
    if shift == 0:
        assert all(x_c is None for _, x_c in seen)
        return
    offsets = set()
    for x_l, x_c in seen:
        assert x_c.shape == x_l.shape
        for original, moved in zip(x_l.view(-1, 28, 28), x_c.view(-1, 28, 28)):
            padded = torch.nn.functional.pad(original, (2, 2, 2, 2))
            matches = {(dy, dx) for dy in range(5) for dx in range(5)
                       if torch.equal(padded[dy:dy + 28, dx:dx + 28], moved)}
            assert matches, "a classifier input that is no translation of its labelled image by at most 2 pixels"
            offsets |= matches
    assert len(offsets) > 5  # offsets are drawn, not fixed


@pytest.mark.parametrize("classifier_samples", [1, 6])
def test_the_classification_term_gets_draws_of_a_of_its_own(small_split, classifier_samples):
    """S_c > 1: each step's noise holds S_c draws of a for each labelled image of the batch (not the
    MC-repeated batch); S_c = 1 draws none, so the defaults train as before."""
    trainer = Trainer(MODEL, config(epochs=1, classifier_samples=classifier_samples), small_split)
    seen = []
    step = trainer.step_fn
    trainer.step_fn = lambda x_l, y_l, x_u, noise, beta, x_c: seen.append(noise) or step(x_l, y_l, x_u, noise, beta, x_c)
    trainer.fit()
    assert len(seen) == trainer.steps_per_epoch
    if classifier_samples == 1:
        assert all(noise.a_classifier is None for noise in seen)
        return
    assert all(noise.a_classifier.shape == (6, 20, MODEL.a_dim) for noise in seen)
    assert not torch.equal(seen[0].a_classifier, seen[1].a_classifier)  # fresh draws every step
