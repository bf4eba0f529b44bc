"""`Predictor`'s answers without torch: class probabilities, novelty, samples and analogies of a
saved model, computed in numpy (`adgm_core.numpy_model`) with the same noise (`adgm_core.torch_random`).

It draws its noise as `Predictor` does (one generator seeded 0: the draws of a for q(y | x), then
those of a and z for the novelty bound; z from a generator seeded by the request's seed for a
sample), so its numbers are Predictor's to float32 rounding, checked at batch sizes 1 and 100 in
tests/core/test_numpy_predictor.py. A process that imports this serves a model in a few MB instead
of torch's few hundred (the API: docs/results.md, issue 18).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adgm_core.config import ModelConfig
from adgm_core.novelty_calibration import novelty_score
from adgm_core.numpy_model import (NumpyADGM, load_numpy_model, model_input, reparameterize, sigmoid, softmax,
                                   unlabelled_bound)
from adgm_core.torch_random import TorchNormals

CLASSIFY_SAMPLES = 16  # adgm_core.predictor.CLASSIFY_SAMPLES
CLASSIFY_BATCH = 1000  # images × draws per pass, as adgm_core.evaluation.class_probabilities
BOUND_BATCH = 250  # images per pass of the novelty bound, as adgm_core.novelty.negative_bound


class NumpyPredictor:
    def __init__(self, model: NumpyADGM, card: dict):
        self.model = model
        self.card = card
        self.config: ModelConfig = model.config
        c = model.config
        noise = TorchNormals(0)
        samples = card.get("train", {}).get("eval_samples", CLASSIFY_SAMPLES)
        self._eps_y = noise.randn(samples, 1, c.a_dim)
        bound_samples = card["novelty"]["samples"]
        self._eps_a = noise.randn(bound_samples, 1, c.a_dim)
        self._eps_z = noise.randn(c.n_classes, bound_samples, 1, c.z_dim)

    @classmethod
    def from_directory(cls, directory: Path | str, expected_sha256: str | None = None) -> NumpyPredictor:
        model, card = load_numpy_model(directory, expected_sha256)
        return cls(model, card)

    def _check(self, images: np.ndarray) -> None:
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != self.config.x_shape:
            raise ValueError(f"expected uint8 images of shape (N, {self.config.x_shape[0]}, {self.config.x_shape[1]}),"
                             f" got {images.dtype} {images.shape}")

    def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """q(y | x) for uint8 images (N, H, W) and each image's novelty in [0, 1]."""
        return self.probabilities(images), self.novelty(images)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """q(y | x) for uint8 images (N, H, W): (N, K), averaged over the fixed draws of a."""
        self._check(images)
        x = model_input(images)
        samples = len(self._eps_y)
        out = []
        for start in range(0, len(x), max(1, CLASSIFY_BATCH // samples)):
            chunk = x[start:start + max(1, CLASSIFY_BATCH // samples)]
            mu_a, log_var_a = self.model.infer_a(chunk)
            a = reparameterize(mu_a, log_var_a, self._eps_y)  # (S, B, A)
            out.append(softmax(self.model.classify(chunk, a)).mean(0))
        return np.concatenate(out) if out else np.zeros((0, self.config.n_classes), np.float32)

    def novelty(self, images: np.ndarray) -> np.ndarray:
        """Each image's novelty in [0, 1] (adgm_core.novelty), from the bound through every label's decoder."""
        self._check(images)
        x = model_input(images)
        c, samples = self.config, len(self._eps_a)
        out = []
        for start in range(0, len(x), BOUND_BATCH):
            chunk = x[start:start + BOUND_BATCH]
            B = len(chunk)
            eps_a = np.broadcast_to(self._eps_a, (samples, B, c.a_dim)).reshape(samples * B, c.a_dim)
            eps_z = np.broadcast_to(self._eps_z, (c.n_classes, samples, B, c.z_dim)).reshape(
                c.n_classes, samples * B, c.z_dim)
            bound = unlabelled_bound(self.model, np.tile(chunk, (samples, 1)), eps_a, eps_z)
            out.append(-bound.reshape(samples, B).mean(0))
        nll = np.concatenate(out) if out else np.zeros(0, np.float32)
        return novelty_score(nll, self.card["novelty"])

    def _decode(self, labels: np.ndarray, z: np.ndarray) -> np.ndarray:
        """uint8 images of the pixel means of p(x | y, z) (the SDGM's a at the mean of p(a | y, z))."""
        a = self.model.generate_a(None, labels, z)[0] if self.config.skip else None
        means = sigmoid(self.model.generate_x(labels, z, a))
        return (means * np.float32(255)).round().astype(np.uint8).reshape(-1, *self.config.x_shape)

    def sample(self, labels: list[int], seed: int) -> np.ndarray:
        """One uint8 image (H, W) per label, from p(x | y, z) with z drawn by `seed`."""
        if any(not 0 <= label < self.config.n_classes for label in labels):
            raise ValueError(f"labels must lie in 0..{self.config.n_classes - 1}")
        z = TorchNormals(seed).randn(len(labels), self.config.z_dim)
        return self._decode(np.asarray(labels, np.int64), z)

    def analogies(self, image: np.ndarray) -> np.ndarray:
        """The style of one uint8 image (H, W) under every label: uint8 (K, H, W)."""
        self._check(image[None])
        x = model_input(image[None])
        a = self.model.infer_a(x)[0]
        y = self.model.classify(x, a).argmax(-1)
        z = self.model.infer_z(x, a, y)[0]
        K = self.config.n_classes
        return self._decode(np.arange(K), np.broadcast_to(z, (K, z.shape[-1])))
