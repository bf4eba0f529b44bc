"""The two containers the rest of the library trains and evaluates on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .validation import check_images, check_labels, check_n_classes


def _digest(*arrays: np.ndarray) -> str:
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(f"{array.dtype.str}{array.shape};".encode())
        sha.update(np.ascontiguousarray(array).data)
    return sha.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images (uint8 N×H×W, 255 = ink) with labels (int64, −1 = unlabelled)."""

    images: np.ndarray
    labels: np.ndarray
    n_classes: int
    name: str

    def __post_init__(self) -> None:
        check_n_classes(self.n_classes)
        if check_images(self.images).shape != self.images.shape:
            raise DataError("ImageSet.images must be N×H×W; reshape N×D data first")
        if self.labels.dtype != np.int64:
            raise DataError(f"ImageSet.labels must be int64, got {self.labels.dtype}")
        check_labels(self.labels, len(self.images), self.n_classes)

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        """A short sha256 of images and labels: the data-set id stored with checkpoints."""
        return _digest(self.images, self.labels)


@dataclass(frozen=True, eq=False)
class SemiSupervisedSplit:
    """A few labelled examples plus all training images as the unlabelled set (the paper's protocol)."""

    labelled_images: np.ndarray
    labelled_labels: np.ndarray
    unlabelled_images: np.ndarray
    n_classes: int
    name: str

    def __post_init__(self) -> None:
        check_n_classes(self.n_classes)
        check_images(self.labelled_images, "labelled_images")
        check_images(self.unlabelled_images, "unlabelled_images")
        if self.labelled_images.shape[1:] != self.unlabelled_images.shape[1:]:
            raise DataError(
                f"labelled images are {self.labelled_images.shape[1:]} but unlabelled images are "
                f"{self.unlabelled_images.shape[1:]}"
            )
        if self.labelled_labels.dtype != np.int64:
            raise DataError(f"labelled_labels must be int64, got {self.labelled_labels.dtype}")
        check_labels(self.labelled_labels, len(self.labelled_images), self.n_classes,
                     "labelled_labels", allow_unlabelled=False)

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.unlabelled_images.shape[1], self.unlabelled_images.shape[2]

    def fingerprint(self) -> str:
        """A short sha256 of the labelled choice and the unlabelled images."""
        return _digest(self.labelled_images, self.labelled_labels, self.unlabelled_images)
