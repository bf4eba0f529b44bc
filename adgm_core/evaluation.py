"""Test-time classification: q(y | x) ≈ (1/S) Σ_s q(y | a_s, x) with a_s ~ q(a | x).

Inputs are grey levels scaled to [0, 1] (the Bernoulli means), not binarised draws.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from adgm_core.model import ADGM
from adgm_core.layers import reparameterize


def as_model_input(images: np.ndarray | Tensor, device: torch.device | str = "cpu") -> Tensor:
    """uint8 images (N, H, W) or (N, D) → float (N, D) in [0, 1] on `device`."""
    images = torch.as_tensor(images, device=device)
    return images.reshape(images.shape[0], -1).float() / 255.0


@torch.no_grad()
def class_probabilities(
    model: ADGM, x: Tensor, samples: int, generator: torch.Generator, batch_size: int = 1000
) -> Tensor:
    """q(y | x) for float inputs (N, D), averaged over `samples` draws of a; shape (N, K).

    The S standard-normal draws are shared by all images, so an image's answer does not depend on
    which other images are in the batch.
    """
    eps = torch.randn((samples, 1, model.config.a_dim), generator=generator, device=x.device)
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
    generator = torch.Generator(device).manual_seed(seed)
    probabilities = class_probabilities(model, as_model_input(images, device), samples, generator)
    predicted = probabilities.argmax(-1).cpu().numpy()
    return float((predicted != np.asarray(labels)).mean())
