"""The diagnostics of a's use against independent computations on a tiny model."""

import math

import numpy as np
import torch

from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits, semi_supervised_split
from adgm_core.diagnostics import auxiliary_use, mutual_information
from adgm_core.model import ADGM
from adgm_core.trainer import Trainer

TINY = dict(a_dim=4, z_dim=4, hidden=(32,))


def test_mutual_information_is_zero_when_q_a_ignores_x_and_positive_when_it_does_not():
    torch.manual_seed(0)
    M, A = 200, 3
    eps = torch.randn(M, A)
    constant = mutual_information(torch.full((M, A), 0.7), torch.full((M, A), -1.0), eps)
    assert abs(constant) < 1e-5
    # well separated means, small variances: a identifies x, Î reaches its ceiling log M
    separated = mutual_information(torch.arange(M, dtype=torch.float).repeat(A, 1).T * 10, torch.full((M, A), -4.0), eps)
    assert math.log(M) - 1e-3 < separated <= math.log(M) + 1e-6


def test_mutual_information_matches_a_per_pair_loop():
    torch.manual_seed(1)
    M, A = 12, 2
    mu, log_var, eps = torch.randn(M, A), torch.randn(M, A) * 0.3, torch.randn(M, A)
    a = mu + torch.exp(0.5 * log_var) * eps
    normal = lambda j: torch.distributions.Normal(mu[j], torch.exp(0.5 * log_var[j]))  # noqa: E731
    terms = [normal(i).log_prob(a[i]).sum() - torch.log(torch.stack([normal(j).log_prob(a[i]).sum().exp()
                                                                     for j in range(M)]).mean()) for i in range(M)]
    assert abs(mutual_information(mu, log_var, eps) - float(torch.stack(terms).mean())) < 1e-5


def _trained(deterministic_a: bool):
    digits = load_offline_digits()
    split = semi_supervised_split(digits[0], labels_per_class=2, seed=0)
    config = ModelConfig(**TINY, skip=False, deterministic_a=deterministic_a)
    return Trainer(config, TrainConfig(epochs=1, batch_size=100, learning_rate=1e-3), split).fit().model, digits[1]


def test_a_deterministic_q_a_has_zero_variance_and_the_same_accuracy_sampled_or_at_the_mean():
    model, test = _trained(deterministic_a=True)
    figures = auxiliary_use(model, test.images[:300], test.labels[:300], samples=5, mi_images=300)
    assert figures["variance_of_a"] < 1e-12
    assert figures["accuracy_sampled_a"] == figures["accuracy_mean_a"]
    assert figures["sampled_agrees_with_mean"] == 1.0


def test_sampled_and_mean_accuracies_are_of_the_same_images():
    model, test = _trained(deterministic_a=False)
    images, labels = test.images[:300], test.labels[:300]
    figures = auxiliary_use(model, images, labels, samples=5, mi_images=300)
    assert figures["n_images"] == 300 and figures["variance_of_a"] > 1e-3
    x = torch.as_tensor(images.reshape(300, -1)).float() / 255
    with torch.no_grad():
        at_mean = model.eval().classify(x, model.infer_a(x)[0]).argmax(-1).numpy()
    assert abs(figures["accuracy_mean_a"] - float(np.mean(at_mean == labels))) < 1e-6
    assert 0 <= figures["mutual_information_nats"] <= figures["mutual_information_max_nats"] + 1e-6
