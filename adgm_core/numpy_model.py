"""A saved ADGM evaluated in numpy: the forward passes inference needs, read from the same files
(`adgm_core.model_files`), for a process that must not import torch (the API).

`NumpyADGM` mirrors `adgm_core.model.ADGM` in eval mode: the same networks (multi-input MLPs with
the label as an embedding row, batch norm on running statistics, Gaussian heads) under the same
parameter names, so the checks of a checkpoint's names and shapes are the checks `load_model`
makes. `unlabelled_bound` mirrors `adgm_core.objective.unlabelled_bound` (β = 1). Everything is
float32, as in torch; tests/core/test_numpy_model.py compares every pass with the torch model.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from adgm_core.config import ModelConfig
from adgm_core.model_files import WEIGHTS_FILE, CARD_FILE, CheckpointError, read_card, read_checked_bytes

LOG_2PI = math.log(2 * math.pi)
BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm1d's default, which adgm_core.layers.BatchNorm keeps
DETERMINISTIC_LOG_VAR = -30.0  # adgm_core.model.DETERMINISTIC_LOG_VAR
SOFTPLUS_THRESHOLD = 20.0  # torch.nn.Softplus's: above it, softplus(x) = x


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26); numpy has none, and scipy is not needed."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-x * x))).astype(x.dtype)


ACTIVATIONS = {
    "relu": lambda h: np.maximum(h, 0),
    "softplus": lambda h: np.where(h > SOFTPLUS_THRESHOLD, h, np.log1p(np.exp(np.minimum(h, SOFTPLUS_THRESHOLD)))),
    "tanh": np.tanh,
    "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0))),
    "gelu": lambda h: 0.5 * h * (1.0 + _erf(h * np.float32(1 / math.sqrt(2)))),
}


def _mlp_layout(prefix: str, inputs: dict[str, int], n_classes: int | None, hidden: tuple[int, ...],
                batch_norm: bool) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of a `MultiInputMLP` (its `rest` numbered as its nn.Sequential)."""
    shapes = {f"{prefix}.first.{name}.weight": (hidden[0], dim) for name, dim in inputs.items()}
    if n_classes:
        shapes[f"{prefix}.label.weight"] = (n_classes, hidden[0])
    shapes[f"{prefix}.bias"] = (hidden[0],)
    index = 0
    for layer, width in enumerate(hidden):
        if layer:
            shapes[f"{prefix}.rest.{index}.weight"] = (width, hidden[layer - 1])
            shapes[f"{prefix}.rest.{index}.bias"] = (width,)
            index += 1
        if batch_norm:
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.rest.{index}.{name}"] = (width,)
            shapes[f"{prefix}.rest.{index}.num_batches_tracked"] = ()
            index += 1
        index += 1  # the activation
    return shapes


def _linear_layout(prefix: str, in_dim: int, out_dim: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (out_dim, in_dim), f"{prefix}.bias": (out_dim,)}


def parameter_layout(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of an ADGM's state dict for `config`: name → shape."""
    c = config
    D, K, A, Z, H = c.x_dim, c.n_classes, c.a_dim, c.z_dim, c.hidden
    H_gen = tuple(reversed(H))
    bn = c.batch_norm
    return {
        **_mlp_layout("q_a_net", {"x": D}, None, H, bn),
        **_linear_layout("q_a.mu", H[-1], A), **_linear_layout("q_a.log_var", H[-1], A),
        **_mlp_layout("q_y_net", {"x": D, "a": A}, None, H, bn),
        **_linear_layout("q_y_logits", H[-1], K),
        **_mlp_layout("q_z_net", {"x": D, "a": A}, K, H, bn),
        **_linear_layout("q_z.mu", H[-1], Z), **_linear_layout("q_z.log_var", H[-1], Z),
        **_mlp_layout("p_a_net", {"z": Z} if c.skip else {"x": D, "z": Z}, K, H_gen, bn),
        **_linear_layout("p_a.mu", H_gen[-1], A), **_linear_layout("p_a.log_var", H_gen[-1], A),
        **_mlp_layout("p_x_net", {"z": Z, "a": A} if c.skip else {"z": Z}, K, H_gen, bn),
        **_linear_layout("p_x_logits", H_gen[-1], D),
    }


class NumpyADGM:
    """The eval-mode forward passes of an ADGM on float32 numpy arrays; label arguments are class
    indices, and shape (K, 1) against inputs (B, ·) evaluates all K labels at once, as in torch."""

    def __init__(self, config: ModelConfig, tensors: dict[str, np.ndarray]):
        self.config = config
        # a linear layer's weight is kept transposed (in, out) for h @ W, and only so; the label
        # embeddings (K, H) are rows to pick
        self._weights = {
            name: np.ascontiguousarray(tensor.T if tensor.ndim == 2 and not name.endswith("label.weight") else tensor,
                                       np.float32)
            for name, tensor in tensors.items() if not name.endswith("num_batches_tracked")
        }
        self._activation = ACTIVATIONS[config.activation]

    @classmethod
    def of(cls, model) -> NumpyADGM:
        """The numpy twin of a torch `adgm_core.model.ADGM` in memory (tests and benches hold those)."""
        return cls(model.config, {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()})

    def _linear(self, name: str, h: np.ndarray, bias: bool = True) -> np.ndarray:
        out = h @ self._weights[f"{name}.weight"]
        return out + self._weights[f"{name}.bias"] if bias else out

    def _batch_norm(self, name: str, h: np.ndarray) -> np.ndarray:
        w = self._weights
        scale = w[f"{name}.weight"] / np.sqrt(w[f"{name}.running_var"] + np.float32(BATCH_NORM_EPS))
        return h * scale + (w[f"{name}.bias"] - w[f"{name}.running_mean"] * scale)

    def _mlp(self, prefix: str, labels: np.ndarray | None = None, **inputs: np.ndarray) -> np.ndarray:
        h = self._weights[f"{prefix}.bias"]
        for name, value in inputs.items():  # the order of the torch module's inputs
            h = h + self._linear(f"{prefix}.first.{name}", value, bias=False)
        if labels is not None:
            h = h + self._weights[f"{prefix}.label.weight"][labels]
        index = 0
        for layer in range(len(self.config.hidden)):
            if layer:
                h = self._linear(f"{prefix}.rest.{index}", h)
                index += 1
            if self.config.batch_norm:
                h = self._batch_norm(f"{prefix}.rest.{index}", h)
                index += 1
            h = self._activation(h)
            index += 1
        return h

    def _gaussian(self, prefix: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._linear(f"{prefix}.mu", h), self._linear(f"{prefix}.log_var", h)

    def infer_a(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, log_var = self._gaussian("q_a", self._mlp("q_a_net", x=x))
        if self.config.deterministic_a:
            log_var = np.full_like(mu, DETERMINISTIC_LOG_VAR)
        return mu, log_var

    def classify(self, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        return self._linear("q_y_logits", self._mlp("q_y_net", x=x, a=a))

    def infer_z(self, x: np.ndarray, a: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._gaussian("q_z", self._mlp("q_z_net", y, x=x, a=a))

    def generate_a(self, x: np.ndarray | None, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inputs = {"z": z} if self.config.skip else {"x": x, "z": z}
        return self._gaussian("p_a", self._mlp("p_a_net", y, **inputs))

    def generate_x(self, y: np.ndarray, z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
        inputs = {"z": z, "a": a} if self.config.skip else {"z": z}
        return self._linear("p_x_logits", self._mlp("p_x_net", y, **inputs))


def load_numpy_model(directory: Path | str, expected_sha256: str | None = None) -> tuple[NumpyADGM, dict]:
    """A model written by `adgm_core.checkpoint.save_model`, with the checks of its `load_model`."""
    directory = Path(directory)
    card = read_card(directory)
    data = read_checked_bytes(directory / WEIGHTS_FILE, expected_sha256 or card.get("sha256"))
    try:
        tensors = safetensors.numpy.load(data)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{directory / WEIGHTS_FILE} is not a readable safetensors file ({error}); "
                              "it may be truncated") from None
    try:
        config = ModelConfig.from_dict(card["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / CARD_FILE} has an invalid config: {error}") from None
    expected = parameter_layout(config)
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise CheckpointError(f"{directory}: weights do not fit the config (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name]:
            raise CheckpointError(f"{directory}: {name} has shape {tuple(tensor.shape)}, config needs {expected[name]}")
    return NumpyADGM(config, tensors), card


def model_input(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) as the networks take them: float32 (N, H·W) in [0, 1]
    (`adgm_core.evaluation.as_model_input`)."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


# The bounds, as adgm_core.layers and adgm_core.objective compute them.

def reparameterize(mu: np.ndarray, log_var: np.ndarray, eps: np.ndarray) -> np.ndarray:
    return mu + np.exp(0.5 * log_var) * eps


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1 / (1 + e), e / (1 + e))


def _gaussian_log_density(x: np.ndarray, mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    return -0.5 * (LOG_2PI + log_var + (x - mu) ** 2 * np.exp(-log_var)).sum(-1)


def _standard_normal_log_density(x: np.ndarray) -> np.ndarray:
    return -0.5 * (LOG_2PI + x ** 2).sum(-1)


def _bernoulli_log_likelihood(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    # log(1 + e) rather than log1p(e): numpy's float32 log is vectorised and its log1p several times
    # slower (the bound's largest cost); for e = exp(-|logit|) in (0, 1] both are within 1.2e-7 of exact
    log_sigmoid = np.minimum(logits, 0) - np.log(1 + np.exp(-np.abs(logits)))
    return -((1 - x) * logits - log_sigmoid).sum(-1)


def unlabelled_bound(model: NumpyADGM, x: np.ndarray, eps_a: np.ndarray, eps_z: np.ndarray) -> np.ndarray:
    """-U(x) of float inputs (B, D), all K labels enumerated; eps_a (B, A), eps_z (K, B, Z): (B,)."""
    K = model.config.n_classes
    mu_a, log_var_a = model.infer_a(x)
    a = reparameterize(mu_a, log_var_a, eps_a)
    log_q_y = log_softmax(model.classify(x, a))
    labels = np.arange(K)[:, None]
    mu_z, log_var_z = model.infer_z(x, a, labels)
    z = reparameterize(mu_z, log_var_z, eps_z)
    mu_pa, log_var_pa = model.generate_a(x, labels, z)
    log_p_x = _bernoulli_log_likelihood(x, model.generate_x(labels, z, np.broadcast_to(a, (K, *a.shape))))
    latent = (_standard_normal_log_density(z) + _gaussian_log_density(a, mu_pa, log_var_pa)
              - _gaussian_log_density(a, mu_a, log_var_a) - _gaussian_log_density(z, mu_z, log_var_z))
    elbo_per_label = (log_p_x - math.log(K) + latent).T
    q_y = np.exp(log_q_y)
    entropy = -(q_y * log_q_y).sum(-1)
    return (q_y * elbo_per_label).sum(-1) + entropy
