"""The Auxiliary Deep Generative Model (Maaløe, Sønderby, Sønderby & Winther, ICML 2016).

Generative model p_θ, for x an image flattened to D binary pixels, y one of K classes:

    p(y)         = Cat(y | 1/K)
    p(z)         = N(z | 0, I)
    p(x | y, z)  = Bernoulli(x | sigmoid(f_θ(y, z)))
    p(a | x,y,z) = N(a | μ_θ(x, y, z), diag σ²_θ(x, y, z))

Inference model q_φ:

    q(a | x)       = N(a | μ_φ(x), diag σ²_φ(x))
    q(y | a, x)    = Cat(y | softmax π_φ(a, x))
    q(z | a, y, x) = N(z | μ_φ(a, y, x), diag σ²_φ(a, y, x))

With `skip=True` this is the SDGM of the same paper, where a is a latent of the generative model:
p(a | y, z) replaces p(a | x, y, z) and p(x | a, y, z) replaces p(x | y, z).

`deterministic_a` is the authors' ablation of q(a | x) to a point mass at μ_φ(x); its log-variance is
fixed so small that a = μ_φ(x) and log q(a | x) no longer depends on the parameters.

Every network is an MLP with `config.hidden` layers (generative ones reversed), batch-normalised when
`config.batch_norm` (train mode: batch statistics; eval mode: running ones). Label arguments are
class indices; shape (K, 1) against inputs of shape (B, ·) evaluates all K labels at once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from adgm_core.config import ModelConfig
from adgm_core.layers import GaussianHead, MultiInputMLP


DETERMINISTIC_LOG_VAR = -30.0  # σ ≈ 3e-7: a = μ(x) to float precision, and log q(a | x) a constant


class ADGM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        D, K, A, Z, H = c.x_dim, c.n_classes, c.a_dim, c.z_dim, c.hidden
        H_gen = tuple(reversed(H))

        self.q_a_net = MultiInputMLP({"x": D}, None, H, c.activation, c.batch_norm)
        self.q_a = GaussianHead(H[-1], A)
        self.q_y_net = MultiInputMLP({"x": D, "a": A}, None, H, c.activation, c.batch_norm)
        self.q_y_logits = nn.Linear(H[-1], K)
        self.q_z_net = MultiInputMLP({"x": D, "a": A}, K, H, c.activation, c.batch_norm)
        self.q_z = GaussianHead(H[-1], Z)

        p_a_inputs = {"z": Z} if c.skip else {"x": D, "z": Z}
        self.p_a_net = MultiInputMLP(p_a_inputs, K, H_gen, c.activation, c.batch_norm)
        self.p_a = GaussianHead(H_gen[-1], A)
        p_x_inputs = {"z": Z, "a": A} if c.skip else {"z": Z}
        self.p_x_net = MultiInputMLP(p_x_inputs, K, H_gen, c.activation, c.batch_norm)
        self.p_x_logits = nn.Linear(H_gen[-1], D)
        for logits in (self.q_y_logits, self.p_x_logits):
            nn.init.xavier_normal_(logits.weight)
            nn.init.zeros_(logits.bias)

    def infer_a(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(a | x): mean and log-variance (fixed tiny with `deterministic_a`)."""
        mu, log_var = self.q_a(self.q_a_net(x=x))
        if self.config.deterministic_a:
            log_var = torch.full_like(mu, DETERMINISTIC_LOG_VAR)
        return mu, log_var

    def classify(self, x: Tensor, a: Tensor) -> Tensor:
        """q(y | a, x): unnormalised log-probabilities (logits)."""
        return self.q_y_logits(self.q_y_net(x=x, a=a))

    def infer_z(self, x: Tensor, a: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | a, y, x): mean and log-variance."""
        return self.q_z(self.q_z_net(y, x=x, a=a))

    def generate_a(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """p(a | x, y, z), or p(a | y, z) for the SDGM: mean and log-variance."""
        inputs = {"z": z} if self.config.skip else {"x": x, "z": z}
        return self.p_a(self.p_a_net(y, **inputs))

    def generate_x(self, y: Tensor, z: Tensor, a: Tensor | None = None) -> Tensor:
        """p(x | y, z), or p(x | a, y, z) for the SDGM: Bernoulli logits per pixel."""
        inputs = {"z": z, "a": a} if self.config.skip else {"z": z}
        return self.p_x_logits(self.p_x_net(y, **inputs))
