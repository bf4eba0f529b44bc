"""Generating images: x ~ p(x | y, z) for chosen labels, and style analogies.

For display the decoder's Bernoulli means sigmoid(f(y, z)) are returned, not binary draws.
"""

from __future__ import annotations

import torch
from torch import Tensor

from adgm_core.model import ADGM


def _decode(model: ADGM, y: Tensor, z: Tensor) -> Tensor:
    """Pixel means of p(x | y, z); for the SDGM a is taken at the mean of p(a | y, z)."""
    a = model.generate_a(None, y, z)[0] if model.config.skip else None
    return torch.sigmoid(model.generate_x(y, z, a))


@torch.no_grad()
def sample(model: ADGM, labels: list[int], seed: int) -> Tensor:
    """One image per label, z ~ p(z) from a generator seeded by `seed`: uint8 (N, H, W)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    z = torch.randn((len(labels), model.config.z_dim), generator=generator, device=device)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    return _to_uint8(_decode(model, y, z), model)


@torch.no_grad()
def analogies(model: ADGM, x: Tensor) -> Tensor:
    """The style z of one image (D,) in [0, 1], rendered under every label: uint8 (K, H, W).

    z is the mean of q(z | a, y, x) at the mean of q(a | x) and the most probable y.
    """
    x = x.reshape(1, -1)
    a = model.infer_a(x)[0]
    y = model.classify(x, a).argmax(-1)
    z = model.infer_z(x, a, y)[0]
    K = model.config.n_classes
    labels = torch.arange(K, device=x.device)
    return _to_uint8(_decode(model, labels, z.expand(K, -1)), model)


def _to_uint8(means: Tensor, model: ADGM) -> Tensor:
    return (means * 255).round().to(torch.uint8).reshape(-1, *model.config.x_shape)
