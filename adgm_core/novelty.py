"""Novelty: how unusual an image is under the model, from the bound on log p(x).

The negative bound -U(x) of each image is compared with the same quantity on training images:
the score is the fraction of training images the model explains better, so 0.5 is typical and a
score near 1 means the image is less likely than almost all training data (not a digit, say).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from adgm_core.model import ADGM
from adgm_core.objective import unlabelled_bound

QUANTILES = 201


def draw_bound_noise(model: ADGM, samples: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Standard-normal draws for `samples` values of a (samples, 1, A) and of z under each label
    (K, samples, 1, Z), to be shared by all images."""
    c = model.config
    eps_a = torch.randn((samples, 1, c.a_dim), generator=generator, device=generator.device)
    eps_z = torch.randn((c.n_classes, samples, 1, c.z_dim), generator=generator, device=generator.device)
    return eps_a, eps_z


@torch.no_grad()
def negative_bound(model: ADGM, x: Tensor, eps_a: Tensor, eps_z: Tensor, batch_size: int = 250) -> Tensor:
    """-U(x) in nats for float inputs (N, D), averaged over the draws of (a, z) from `draw_bound_noise`.

    The samples are folded into the batch (one pass), and the draws are shared by all images, so an
    image's score does not depend on the rest of the batch.
    """
    c = model.config
    samples = len(eps_a)
    out = []
    for chunk in x.split(batch_size):
        B = len(chunk)
        bound = unlabelled_bound(
            model, chunk.repeat(samples, 1), eps_a.expand(-1, B, -1).reshape(samples * B, c.a_dim),
            eps_z.expand(-1, -1, B, -1).reshape(c.n_classes, samples * B, c.z_dim),
        )
        out.append(-bound.elbo.reshape(samples, B).mean(0))
    return torch.cat(out)


def calibrate(model: ADGM, x: Tensor, samples: int = 4, seed: int = 0) -> dict:
    """Quantiles of -U(x) over training inputs, stored in the model card."""
    eps_a, eps_z = draw_bound_noise(model, samples, torch.Generator(x.device).manual_seed(seed))
    nll = negative_bound(model, x, eps_a, eps_z).cpu().numpy()
    return {"nll_quantiles": np.quantile(nll, np.linspace(0, 1, QUANTILES)).round(4).tolist(), "samples": samples}

