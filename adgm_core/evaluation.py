"""Test-time classification: q(y | x) ≈ (1/S) Σ_s q(y | a_s, x) with a_s ~ q(a | x), and the
judge-free self-consistency of the model's samples.

Inputs are grey levels scaled to [0, 1] (the Bernoulli means), not binarised draws.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from adgm_core.generation import sample
from adgm_core.layers import reparameterize
from adgm_core.model import ADGM


def as_model_input(images: np.ndarray | Tensor, device: torch.device | str = "cpu") -> Tensor:
    """uint8 images (N, H, W) or (N, D) → float (N, D) in [0, 1] on `device`."""
    images = torch.as_tensor(images, device=device)
    return images.reshape(images.shape[0], -1).float() / 255.0


def draw_class_noise(model: ADGM, samples: int, generator: torch.Generator) -> Tensor:
    """Standard-normal draws (S, 1, A) for the S samples of a, to be shared by all images."""
    return torch.randn((samples, 1, model.config.a_dim), generator=generator, device=generator.device)


@torch.no_grad()
def class_probabilities(model: ADGM, x: Tensor, eps: Tensor, batch_size: int = 1000) -> Tensor:
    """q(y | x) for float inputs (N, D), averaged over a_s = mu(x) + sigma(x) * eps_s; shape (N, K).

    The draws eps (S, 1, A) are shared by all images, so an image's answer does not depend on which
    other images are in the batch.
    """
    samples = len(eps)
    out = []
    for chunk in x.split(max(1, batch_size // samples)):
        mu_a, log_var_a = model.infer_a(chunk)
        a = reparameterize(mu_a, log_var_a, eps)  # (S, B, A)
        logits = model.classify(chunk.expand(samples, -1, -1), a)
        out.append(torch.softmax(logits, dim=-1).mean(0))
    return torch.cat(out)


def error_rate(model: ADGM, images: np.ndarray, labels: np.ndarray, samples: int, seed: int = 0) -> float:
    """Fraction of misclassified images under the S-sample estimate of q(y | x)."""
    device = next(model.parameters()).device
    eps = draw_class_noise(model, samples, torch.Generator(device).manual_seed(seed))
    probabilities = class_probabilities(model, as_model_input(images, device), eps)
    predicted = probabilities.argmax(-1).cpu().numpy()
    return float((predicted != np.asarray(labels)).mean())


def self_consistency(model: ADGM, samples: int, per_label: int = 100, seed: int = 0) -> dict:
    """For each label k, the share of `per_label` samples x ~ p(x | y=k, z) (as uint8 images, as served)
    whose argmax q(y | x) is k: {"per_label": [K shares], "mean": their mean}.

    It needs no other classifier, so it works for any data set, but it cannot see a decoder and a
    classifier that agree on the wrong digit; bench/judge.py measures fidelity with an independent one.
    """
    device = next(model.parameters()).device
    K = model.config.n_classes
    labels = np.repeat(np.arange(K), per_label)
    images = sample(model, labels.tolist(), seed)
    eps = draw_class_noise(model, samples, torch.Generator(device).manual_seed(seed))
    predicted = class_probabilities(model, as_model_input(images, device), eps).argmax(-1).cpu().numpy()
    shares = [float((predicted[labels == k] == k).mean()) for k in range(K)]
    return {"per_label": shares, "mean": float(np.mean(shares))}
