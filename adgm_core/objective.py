"""The variational bounds of the ADGM and the semi-supervised training objective.

Labelled data (x, y), with a ~ q(a|x) and z ~ q(z|a,y,x):

    -L(x, y) = E[ log p(x|y,z) + log p(y) + log p(z) + log p(a|x,y,z) - log q(a|x) - log q(z|a,y,x) ]

Unlabelled data x: one a ~ q(a|x) is shared by all K enumerated labels and by the classifier,

    -U(x) = E_q(a|x)[ Σ_y q(y|a,x) (-L(x, y | a)) + H(q(y|a,x)) ]

Objective to minimise, with α defaulting to 0.1 · N / N_labelled:

    J = mean L(x_l, y_l) + mean U(x_u) + α · mean[-log (1/S) Σ_s q(y_l | a_s, x_l)] - (1/N) log p(θ)

The classification term takes the softmax averaged over the S samples of a (the authors' code; S = 1
per sample when `samples` is 1), or over S_c draws of a of its own (`Noise.a_classifier`, the
trainer's `classifier_samples`), which cost one q(a | x) and S_c passes of q(y | a, x) per labelled
image instead of S passes of every network, and the optional weight prior p(θ) = N(θ | 0, I) is scaled by 1/N.
Optionally (`x_c`, the trainer's `classifier_shift`) the classification term scores other images of
the same labels, translated copies x' of x_l with their own a ~ q(a|x'), while L keeps x_l.
Monte Carlo samples are folded into the batch: x is repeated S times and every copy draws its own
noise. All noise is passed in (`Noise`), so a step is a pure function of its inputs: fixed noise
gives exact comparisons, and a compiled step sees no random-number calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from adgm_core.layers import (bernoulli_log_likelihood, full_precision, gaussian_log_density, reparameterize,
                              standard_normal_log_density)
from adgm_core.model import ADGM


@dataclass
class Noise:
    """Standard normal draws for the reparameterised samples of a step."""

    a_labelled: Tensor  # (S·B_l, A)
    z_labelled: Tensor  # (S·B_l, Z)
    a_unlabelled: Tensor  # (S·B_u, A)
    z_unlabelled: Tensor  # (K, S·B_u, Z): one z per enumerated label
    a_classifier: Tensor | None = None  # (S_c, B_l, A): the classification term's own draws of a

    @classmethod
    def draw(cls, model: ADGM, n_labelled: int, n_unlabelled: int, generator: torch.Generator, device,
             classifier_samples: int = 1, n_classified: int = 0) -> Noise:
        """`classifier_samples` > 1 also draws S_c values of a for each of `n_classified` images."""
        c = model.config

        def normal(*shape: int) -> Tensor:
            return torch.randn(shape, generator=generator, device=device)

        return cls(
            normal(n_labelled, c.a_dim),
            normal(n_labelled, c.z_dim),
            normal(n_unlabelled, c.a_dim),
            normal(c.n_classes, n_unlabelled, c.z_dim),
            normal(classifier_samples, n_classified, c.a_dim) if classifier_samples > 1 else None,
        )


@dataclass
class Bound:
    elbo: Tensor  # (N,): the bound on log p(x, y) or log p(x) per example
    log_q_y: Tensor  # (N, K): log q(y | a, x) for the shared sample of a


def _latent_log_ratio(a, mu_a, log_var_a, z, mu_z, log_var_z, mu_pa, log_var_pa) -> Tensor:
    """log p(z) + log p(a | ·) - log q(a | x) - log q(z | a, y, x): the latent part of the bound."""
    return (
        standard_normal_log_density(z)
        + gaussian_log_density(a, mu_pa, log_var_pa)
        - gaussian_log_density(a, mu_a, log_var_a)
        - gaussian_log_density(z, mu_z, log_var_z)
    )


def labelled_bound(model: ADGM, x: Tensor, y: Tensor, eps_a: Tensor, eps_z: Tensor, beta: float = 1.0) -> Bound:
    """-L(x, y) for a batch, with `beta` weighting the latent terms (KL warm-up)."""
    mu_a, log_var_a = model.infer_a(x)
    a = reparameterize(mu_a, log_var_a, eps_a)
    logits_y = model.classify(x, a)
    mu_z, log_var_z = model.infer_z(x, a, y)
    z = reparameterize(mu_z, log_var_z, eps_z)
    mu_pa, log_var_pa = model.generate_a(x, y, z)

    log_p_x = bernoulli_log_likelihood(x, model.generate_x(y, z, a))
    log_p_y = -math.log(model.config.n_classes)
    latent = _latent_log_ratio(a, mu_a, log_var_a, z, mu_z, log_var_z, mu_pa, log_var_pa)
    return Bound(log_p_x + log_p_y + beta * latent, F.log_softmax(full_precision(logits_y), dim=-1))


def unlabelled_bound(model: ADGM, x: Tensor, eps_a: Tensor, eps_z: Tensor, beta: float = 1.0) -> Bound:
    """-U(x) for a batch, all K labels enumerated in one pass; eps_z has shape (K, B, Z)."""
    K = model.config.n_classes
    mu_a, log_var_a = model.infer_a(x)
    a = reparameterize(mu_a, log_var_a, eps_a)  # (B, A), shared by every label
    log_q_y = F.log_softmax(full_precision(model.classify(x, a)), dim=-1)  # (B, K)

    labels = torch.arange(K, device=x.device).unsqueeze(1)  # (K, 1) broadcasts against (B, ·)
    mu_z, log_var_z = model.infer_z(x, a, labels)  # (K, B, Z)
    z = reparameterize(mu_z, log_var_z, eps_z)
    mu_pa, log_var_pa = model.generate_a(x, labels, z)

    log_p_x = bernoulli_log_likelihood(x, model.generate_x(labels, z, a))  # (K, B); a's part computed once, broadcast
    latent = _latent_log_ratio(a, mu_a, log_var_a, z, mu_z, log_var_z, mu_pa, log_var_pa)
    elbo_per_label = (log_p_x - math.log(K) + beta * latent).T  # (B, K)
    q_y = log_q_y.exp()
    entropy = -(q_y * log_q_y).sum(-1)
    return Bound((q_y * elbo_per_label).sum(-1) + entropy, log_q_y)


@dataclass
class StepLoss:
    loss: Tensor  # scalar to minimise
    elbo: Tensor  # scalar: mean bound over labelled and unlabelled examples, for reporting
    labelled_correct: Tensor  # scalar: labelled examples whose argmax q(y|a,x) is right


def classifier_log_q_y(model: ADGM, x: Tensor, eps_a: Tensor) -> Tensor:
    """log q(y | a, x) with a ~ q(a | x) drawn from `eps_a`: (N, K)."""
    mu_a, log_var_a = model.infer_a(x)
    return F.log_softmax(full_precision(model.classify(x, reparameterize(mu_a, log_var_a, eps_a))), dim=-1)


def averaged_log_q_y(model: ADGM, x: Tensor, eps_a: Tensor) -> Tensor:
    """log (1/S_c) Σ_s q(y | a_s, x) with a_s = μ(x) + σ(x) ε_s for eps_a (S_c, B, A): (B, K).

    q(a | x) and the x part of q(y | a, x)'s first layer are computed once per image and broadcast
    against the S_c draws.
    """
    mu_a, log_var_a = model.infer_a(x)
    a = reparameterize(mu_a, log_var_a, eps_a)  # (S_c, B, A)
    logits = model.classify(x, a)
    return F.log_softmax(full_precision(logits), dim=-1).logsumexp(0) - math.log(len(eps_a))


def mc_averaged_log_q_y(log_q_y: Tensor, samples: int) -> Tensor:
    """log (1/S) Σ_s q(y | a_s, x) for rows ordered as the batch repeated S times: (S·B, K) → (B, K)."""
    return log_q_y.reshape(samples, -1, log_q_y.shape[-1]).logsumexp(0) - math.log(samples)


def weight_penalty(model: ADGM) -> Tensor:
    """-log N(θ | 0, I) up to a constant, over the weight matrices (not biases or batch-norm scales)."""
    return 0.5 * sum(p.square().sum() for p in model.parameters() if p.ndim > 1)


def semi_supervised_loss(
    model: ADGM, x_l: Tensor, y_l: Tensor, x_u: Tensor, noise: Noise, alpha: float, beta: float = 1.0,
    samples: int = 1, prior_scale: float = 0.0, x_c: Tensor | None = None,
) -> StepLoss:
    """J for one step; x_l, y_l, x_u already repeated S times along the batch (MC samples).

    `samples`: S over which q(y | a, x) is averaged in the classification term (1: each copy alone);
    `prior_scale`: 1/N for the weight prior, 0 without it; `x_c`: other images of the labels y_l
    (e.g. translated copies of x_l) for the classification term only, which then draws its own
    a ~ q(a | x_c) with the labelled a-noise; None: the classification term uses x_l's sample of a.
    With `noise.a_classifier` (S_c draws for each of the B_l labelled images), the classification
    term instead averages q(y | a_s, x) over those S_c draws, on the first B_l rows of x_c (or x_l);
    the bounds do not change.
    """
    labelled = labelled_bound(model, x_l, y_l, noise.a_labelled, noise.z_labelled, beta)
    unlabelled = unlabelled_bound(model, x_u, noise.a_unlabelled, noise.z_unlabelled, beta)
    n_l = len(y_l) // samples
    if noise.a_classifier is not None:
        log_q_y = averaged_log_q_y(model, (x_l if x_c is None else x_c)[:n_l], noise.a_classifier)
        y_classified = y_l[:n_l]
        classification = F.nll_loss(log_q_y, y_classified)
    else:
        log_q_y = labelled.log_q_y if x_c is None else classifier_log_q_y(model, x_c, noise.a_labelled)
        y_classified = y_l
        classification = F.nll_loss(mc_averaged_log_q_y(log_q_y, samples), y_l[:n_l])
    loss = -labelled.elbo.mean() - unlabelled.elbo.mean() + alpha * classification
    if prior_scale:
        loss = loss + prior_scale * weight_penalty(model)
    elbo = torch.cat([labelled.elbo, unlabelled.elbo]).mean()
    correct = (log_q_y.argmax(-1) == y_classified).sum()
    return StepLoss(loss, elbo.detach(), correct.detach())
