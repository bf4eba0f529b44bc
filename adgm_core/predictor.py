"""A trained model ready to answer: class probabilities with a novelty score, samples, analogies.

Answers are deterministic: the same input (or seed) gives the same numbers and pixels. The noise
behind q(y | x) and the novelty bound is drawn once and shared by all images, so an image's answer
does not depend on the other images classified with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adgm_core.checkpoint import load_model
from adgm_core.config import ModelConfig
from adgm_core.evaluation import as_model_input, class_probabilities, draw_class_noise
from adgm_core.generation import analogies, sample
from adgm_core.model import ADGM
from adgm_core.novelty import draw_bound_noise, negative_bound
from adgm_core.novelty_calibration import novelty_score

CLASSIFY_SAMPLES = 16  # draws of a averaged in q(y | x) for cards that do not name their eval_samples


class Predictor:
    def __init__(self, model: ADGM, card: dict):
        self.model = model.eval()
        self.card = card
        self.config: ModelConfig = model.config
        self.device = next(model.parameters()).device
        generator = torch.Generator(self.device).manual_seed(0)
        # the draws the model was evaluated (and chosen) with at training
        samples = card.get("train", {}).get("eval_samples", CLASSIFY_SAMPLES)
        self._eps_y = draw_class_noise(model, samples, generator)
        self._eps_a, self._eps_z = draw_bound_noise(model, card["novelty"]["samples"], generator)

    @classmethod
    def from_directory(cls, directory: Path | str, expected_sha256: str | None = None) -> Predictor:
        model, card = load_model(directory, expected_sha256)
        return cls(model, card)

    def _check(self, images: np.ndarray) -> None:
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != self.config.x_shape:
            raise ValueError(f"expected uint8 images of shape (N, {self.config.x_shape[0]}, {self.config.x_shape[1]}),"
                             f" got {images.dtype} {images.shape}")

    def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """q(y | x) for uint8 images (N, H, W) and each image's novelty in [0, 1]."""
        return self.probabilities(images), self.novelty(images)

    @torch.no_grad()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """q(y | x) for uint8 images (N, H, W): (N, K)."""
        self._check(images)
        return class_probabilities(self.model, as_model_input(images, self.device), self._eps_y).cpu().numpy()

    @torch.no_grad()
    def novelty(self, images: np.ndarray) -> np.ndarray:
        """Each image's novelty in [0, 1] (adgm_core.novelty): the bound on log p(x) through every
        label's decoder, several times the work of `probabilities`."""
        self._check(images)
        nll = negative_bound(self.model, as_model_input(images, self.device), self._eps_a, self._eps_z)
        return novelty_score(nll.cpu().numpy(), self.card["novelty"])

    def sample(self, labels: list[int], seed: int) -> np.ndarray:
        """One uint8 image (H, W) per label, from p(x | y, z) with z drawn by `seed`."""
        if any(not 0 <= label < self.config.n_classes for label in labels):
            raise ValueError(f"labels must lie in 0..{self.config.n_classes - 1}")
        return sample(self.model, labels, seed).cpu().numpy()

    def analogies(self, image: np.ndarray) -> np.ndarray:
        """The style of one uint8 image (H, W) under every label: uint8 (K, H, W)."""
        self._check(image[None])
        return analogies(self.model, as_model_input(image[None], self.device)[0]).cpu().numpy()
