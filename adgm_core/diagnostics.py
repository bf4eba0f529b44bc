"""How much the classifier q(y | a, x) uses the auxiliary variable a ~ q(a | x).

In the ADGM, p(a | x, y, z) sees x and can match q(a | x) exactly, so a KL near 0 per dimension of a is
what the bound favours and does not show that a carries nothing. These diagnostics look at q instead:

- the accuracy of q(y | x) ≈ (1/S) Σ_s q(y | a_s, x) against the same images with a = μ(x);
- the variance of q(a | x), averaged over the images and the dimensions of a;
- I(a; x) under q, estimated on M images with one a_i ~ q(a | x_i) each:

      Î = (1/M) Σ_i [ log q(a_i | x_i) − log (1/M) Σ_j q(a_i | x_j) ],

  which is 0 when q(a | x) ignores x and at most log M.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from adgm_core.evaluation import as_model_input, class_probabilities, draw_class_noise
from adgm_core.model import ADGM


def mutual_information(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> float:
    """Î(a; x) in nats from the Gaussians q(a | x_i) = N(mu_i, exp(log_var_i)) and one draw each (eps: (M, A))."""
    a = mu + torch.exp(0.5 * log_var) * eps  # (M, A)
    # log q(a_i | x_j) for every pair: (M_i, M_j)
    log_q = -0.5 * (math.log(2 * math.pi) + log_var[None] + (a[:, None] - mu[None]) ** 2 * torch.exp(-log_var[None])).sum(-1)
    own = log_q.diagonal()
    aggregate = torch.logsumexp(log_q, dim=1) - math.log(len(mu))
    return float((own - aggregate).mean())


@torch.no_grad()
def auxiliary_use(model: ADGM, images: np.ndarray, labels: np.ndarray, samples: int = 10,
                  mi_images: int = 1000, seed: int = 0) -> dict:
    """The diagnostics above on uint8 `images` with their `labels`; the same images for every figure."""
    model = model.eval()
    device = next(model.parameters()).device
    x = as_model_input(images, device)
    labels = torch.as_tensor(np.asarray(labels), device=device)
    generator = torch.Generator(device).manual_seed(seed)
    sampled = class_probabilities(model, x, draw_class_noise(model, samples, generator)).argmax(-1)
    mu, log_var = model.infer_a(x)
    at_mean = model.classify(x, mu).argmax(-1)
    subset = slice(0, min(mi_images, len(x)))
    eps = torch.randn(mu[subset].shape, generator=generator, device=device)
    return {
        "n_images": len(x),
        "accuracy_sampled_a": float((sampled == labels).float().mean()),
        "accuracy_mean_a": float((at_mean == labels).float().mean()),
        "sampled_agrees_with_mean": float((sampled == at_mean).float().mean()),
        "variance_of_a": float(log_var.exp().mean()),
        "mutual_information_nats": mutual_information(mu[subset], log_var[subset], eps),
        "mutual_information_max_nats": math.log(len(mu[subset])),
    }
