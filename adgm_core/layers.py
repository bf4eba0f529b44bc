"""Building blocks: a multi-input MLP (optionally batch-normalised) and a diagonal Gaussian head with
unconstrained log-variance."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_2PI = math.log(2 * math.pi)

_ACTIVATIONS = {"relu": nn.ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


class MultiInputMLP(nn.Module):
    """An MLP on the concatenation of named inputs, with a categorical input given as class indices.

    The first layer is W [x; y; a] + b = W_x x + W_y[:, y] + W_a a + b, computed per input and
    broadcast-added, so enumerating all K labels costs one embedding lookup instead of K copies of
    the W_x x product: `labels` may have shape (K, 1) against inputs of shape (B, d).

    With `batch_norm`, every hidden layer is normalised before its activation (the authors' code).
    """

    def __init__(self, inputs: dict[str, int], n_classes: int | None, hidden: tuple[int, ...], activation: str,
                 batch_norm: bool = False):
        super().__init__()
        self.first = nn.ModuleDict({name: nn.Linear(dim, hidden[0], bias=False) for name, dim in inputs.items()})
        self.label = nn.Embedding(n_classes, hidden[0]) if n_classes else None
        self.bias = nn.Parameter(torch.zeros(hidden[0]))
        act = _ACTIVATIONS[activation]
        norm = (lambda width: [BatchNorm(width)]) if batch_norm else (lambda width: [])  # noqa: E731
        layers: list[nn.Module] = [*norm(hidden[0]), act()]
        for width_in, width_out in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(width_in, width_out), *norm(width_out), act()]
        self.rest = nn.Sequential(*layers)
        gain = nn.init.calculate_gain("relu") if activation in ("relu", "elu", "gelu", "softplus") else 1.0
        for linear in [*self.first.values(), *(m for m in self.rest if isinstance(m, nn.Linear))]:
            nn.init.xavier_normal_(linear.weight, gain=gain)  # per input part, as the authors' separate layers
        if self.label is not None:  # an embedding is a linear map of the one-hot label: fan-in K
            std = gain * math.sqrt(2.0 / (n_classes + hidden[0]))
            nn.init.normal_(self.label.weight, 0.0, std)
        for linear in self.rest:
            if isinstance(linear, nn.Linear):
                nn.init.zeros_(linear.bias)

    def forward(self, labels: Tensor | None = None, **inputs: Tensor) -> Tensor:
        h = self.bias
        for name, linear in self.first.items():
            h = h + linear(inputs[name])
        if self.label is not None:
            h = h + self.label(labels)
        return self.rest(h)


class BatchNorm(nn.BatchNorm1d):
    """Batch normalisation over every leading dimension of (..., H).

    Features of K enumerated labels broadcast to (K, B, H) are normalised with the statistics of all
    K·B rows, exactly as the explicit repeat of the batch over the labels would be.
    """

    def forward(self, h: Tensor) -> Tensor:
        return super().forward(h.reshape(-1, h.shape[-1])).reshape(h.shape)


class GaussianHead(nn.Module):
    """Maps features to the mean and log-variance of a diagonal Gaussian.

    The log-variance is a plain linear output: a softplus on it would force every variance above 1.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.mu = nn.Linear(in_dim, out_dim)
        self.log_var = nn.Linear(in_dim, out_dim)
        for linear in (self.mu, self.log_var):  # start every posterior at N(0, I), the prior: no initial KL shock
            nn.init.normal_(linear.weight, 0.0, 1e-3)
            nn.init.normal_(linear.bias, 0.0, 1e-3)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.log_var(h)


def full_precision(t: Tensor) -> Tensor:
    """bf16/fp16 → float32 (bounds are summed in float32 under autocast); float32/64 unchanged."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def gaussian_log_density(x: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """log N(x; mu, exp(log_var)), summed over the last dimension (in float32 under bf16 autocast)."""
    x, mu, log_var = full_precision(x), full_precision(mu), full_precision(log_var)
    return -0.5 * (LOG_2PI + log_var + (x - mu) ** 2 * torch.exp(-log_var)).sum(-1)


def standard_normal_log_density(x: Tensor) -> Tensor:
    """log N(x; 0, I), summed over the last dimension."""
    return -0.5 * (LOG_2PI + full_precision(x) ** 2).sum(-1)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """log Bernoulli(x; sigmoid(logits)), summed over the last dimension, in the stable logits form."""
    logits = full_precision(logits)
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def reparameterize(mu: Tensor, log_var: Tensor, eps: Tensor) -> Tensor:
    return mu + torch.exp(0.5 * log_var) * eps
