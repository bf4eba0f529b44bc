"""A supervised baseline on the same labels: did the unlabelled images help?

Multinomial logistic regression on the pixels (scaled to [0, 1]) of the labelled images only,
with scikit-learn's default objective (sum of cross-entropies + ½‖W‖², C = 1, bias not
penalised), fitted in float64 by full-batch L-BFGS from zero: convex and deterministic, so the
same labels always give the same baseline. Seconds on a CPU for up to thousands of labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import torch

from adgm_core.data import ImageSet, SemiSupervisedSplit

KIND = "logistic_regression"


@dataclass(frozen=True)
class SupervisedBaseline:
    kind: str
    n_labelled: int
    labelled_fingerprint: str  # sha256 (16 hex) of the labelled images and labels it was fitted on
    test_accuracy: float | None  # on the data set's test images; None when it has none

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 (16 hex) of uint8 images and int64 labels: which labelled set a baseline saw."""
    sha = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    sha.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return sha.hexdigest()[:16]


def _pixels(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(images.reshape(len(images), -1), dtype=torch.float64) / 255.0


def fit_logistic_regression(images: np.ndarray, labels: np.ndarray, n_classes: int, c: float = 1.0,
                            max_iterations: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights D×K, bias K) minimising Σ cross-entropy + ‖W‖² / (2c)."""
    x, y = _pixels(images), torch.as_tensor(labels, dtype=torch.long)
    weights = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=max_iterations, tolerance_grad=1e-6,
                                  history_size=20, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weights + bias, y, reduction="sum") \
            + (weights ** 2).sum() / (2 * c)
        loss.backward()
        return loss

    optimizer.step(objective)
    return weights.detach(), bias.detach()


def predict(model: tuple[torch.Tensor, torch.Tensor], images: np.ndarray) -> np.ndarray:
    weights, bias = model
    with torch.no_grad():
        return (_pixels(images) @ weights + bias).argmax(1).numpy()


def supervised_baseline(split: SemiSupervisedSplit, test: ImageSet | None) -> SupervisedBaseline:
    """Logistic regression fitted on exactly the split's labelled images, scored on `test`."""
    model = fit_logistic_regression(split.labelled_images, split.labelled_labels, split.n_classes)
    accuracy = None
    if test is not None and len(test):
        accuracy = float((predict(model, test.images) == test.labels).mean())
    return SupervisedBaseline(KIND, len(split.labelled_labels),
                              fingerprint(split.labelled_images, split.labelled_labels), accuracy)
