"""A straightforward ADGM training loop in the style of the public PyTorch notebook.

This is the baseline that `bench/throughput.py` measures the trainer against, written the way the
notebook does it: a DataLoader over the training set with batch 64, a separate Bernoulli draw per
batch, concatenated inputs with one-hot labels, every bound computed on `x.repeat` over the labels
(so q(a|x) is recomputed, and a re-sampled, for each label), and a separate classification pass.
Only its speed is used; its known mathematical faults are kept as they are in the notebook.
"""

from __future__ import annotations

import math
from itertools import cycle

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class GaussianSample(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.mu, self.log_var = nn.Linear(in_dim, out_dim), nn.Linear(in_dim, out_dim)

    def forward(self, h):
        mu, log_var = self.mu(h), F.softplus(self.log_var(h))  # the notebook's softplus on the log-variance
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu), mu, log_var


def log_gaussian(x, mu, log_var):
    return torch.sum(-0.5 * math.log(2 * math.pi) - log_var / 2 - (x - mu) ** 2 / (2 * torch.exp(log_var)), dim=-1)


class NotebookADGM(nn.Module):
    def __init__(self, x_dim: int, y_dim: int, z_dim: int, a_dim: int, hidden: list[int]):
        super().__init__()
        self.y_dim = y_dim
        self.aux_encoder = nn.Sequential(mlp([x_dim, *hidden]))
        self.aux_sample = GaussianSample(hidden[-1], a_dim)
        self.classifier = nn.Sequential(mlp([x_dim + a_dim, hidden[0]]), nn.Linear(hidden[0], y_dim))
        self.encoder = mlp([x_dim + y_dim + a_dim, *hidden])
        self.z_sample = GaussianSample(hidden[-1], z_dim)
        self.aux_decoder = mlp([x_dim + z_dim + y_dim, *reversed(hidden)])
        self.aux_decoder_sample = GaussianSample(hidden[0], a_dim)
        self.decoder = nn.Sequential(mlp([z_dim + y_dim, *reversed(hidden)]), nn.Linear(hidden[0], x_dim))

    def classify(self, x):
        a, _, _ = self.aux_sample(self.aux_encoder(x))
        return F.softmax(self.classifier(torch.cat([x, a], dim=1)), dim=-1)

    def forward(self, x, y):
        a, a_mu, a_lv = self.aux_sample(self.aux_encoder(x))
        z, z_mu, z_lv = self.z_sample(self.encoder(torch.cat([x, y, a], dim=1)))
        _, p_a_mu, p_a_lv = self.aux_decoder_sample(self.aux_decoder(torch.cat([x, z, y], dim=1)))
        kl = (log_gaussian(a, a_mu, a_lv) - log_gaussian(a, p_a_mu, p_a_lv)
              + log_gaussian(z, z_mu, z_lv) - log_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)))
        return self.decoder(torch.cat([z, y], dim=1)), kl


def elbo(model: NotebookADGM, x, y=None):
    labelled = y is not None
    if not labelled:
        ys = torch.eye(model.y_dim).repeat_interleave(x.size(0), dim=0)
        xs = x.repeat(model.y_dim, 1)
    else:
        xs, ys = x, y
    logits, kl = model(xs, ys)
    likelihood = -F.binary_cross_entropy_with_logits(logits, xs, reduction="none").sum(-1)
    bound = likelihood - math.log(model.y_dim) - kl
    if labelled:
        return bound.mean()
    probs = model.classify(x)
    bound = bound.view(model.y_dim, -1).t()
    entropy = -(probs * torch.log(probs + 1e-8)).sum(-1)
    return ((probs * bound).sum(-1) + entropy).mean()


def train_steps(model: NotebookADGM, labelled: TensorDataset, unlabelled: TensorDataset, steps: int,
                alpha: float, batch_size: int = 64) -> int:
    """Run `steps` notebook steps; returns the number of examples (labelled + unlabelled) processed."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    labelled_loader = DataLoader(labelled, batch_size=batch_size, shuffle=True)
    unlabelled_loader = DataLoader(unlabelled, batch_size=batch_size, shuffle=True)
    seen = 0
    for step, ((x, y), (u,)) in enumerate(zip(cycle(labelled_loader), cycle(unlabelled_loader))):
        if step == steps:
            break
        x, u = torch.bernoulli(x), torch.bernoulli(u)
        y = F.one_hot(y, model.y_dim).float()
        L = -elbo(model, x, y)
        U = -elbo(model, u)
        classification = -torch.sum(y * torch.log(model.classify(x) + 1e-8), dim=1).mean()
        loss = L + U + alpha * classification
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seen += len(x) + len(u)
    return seen
