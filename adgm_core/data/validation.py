"""Checks shared by every loader: each failure is a DataError that names the array and the problem."""

from __future__ import annotations

import math

import numpy as np

from .errors import DataError

MIN_SIDE = 4
MAX_SIDE = 256


def check_images(images: object, what: str = "images") -> np.ndarray:
    """Return `images` as uint8 N×H×W; N×D arrays with D a perfect square are reshaped to N×√D×√D."""
    if not isinstance(images, np.ndarray):
        raise DataError(f"{what} must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise DataError(f"{what} must be uint8 (0..255), got {images.dtype}")
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise DataError(
                f"{what} is N×D with D = {images.shape[1]}, which is not a perfect square; "
                "store the images as an N×H×W array"
            )
        images = images.reshape(images.shape[0], side, side)
    elif images.ndim != 3:
        raise DataError(
            f"{what} must be N×H×W or N×D, got a {images.ndim}-D array of shape {images.shape}"
        )
    if images.shape[0] == 0:
        raise DataError(f"{what} is empty: it holds no images")
    height, width = images.shape[1:]
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise DataError(
            f"{what}: image sides must be between {MIN_SIDE} and {MAX_SIDE} pixels, "
            f"got {height}×{width}"
        )
    return images


def check_label_array(labels: object, n_images: int, what: str = "labels") -> np.ndarray:
    """Return `labels` as int64 (N,), one per image; the values are checked by check_label_range."""
    if not isinstance(labels, np.ndarray):
        raise DataError(f"{what} must be a numpy array, got {type(labels).__name__}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what} must be integers, got {labels.dtype}")
    if labels.ndim != 1:
        raise DataError(f"{what} must be one-dimensional (N,), got shape {labels.shape}")
    if len(labels) != n_images:
        raise DataError(f"{what} has {len(labels)} entries but there are {n_images} images")
    return labels.astype(np.int64, copy=False)


def check_label_range(labels: np.ndarray, n_classes: int, what: str = "labels",
                      allow_unlabelled: bool = True) -> None:
    """Each label is −1 (if allowed) or in 0..n_classes−1."""
    low = -1 if allow_unlabelled else 0
    bad = labels[(labels < low) | (labels >= n_classes)]
    if bad.size:
        allowed = f"−1 (unlabelled) or 0..{n_classes - 1}" if allow_unlabelled else f"0..{n_classes - 1}"
        raise DataError(f"{what} must be {allowed}, found {int(bad[0])}")


def check_labels(labels: object, n_images: int, n_classes: int, what: str = "labels",
                 allow_unlabelled: bool = True) -> np.ndarray:
    """Return `labels` as int64 (N,), each −1 (if allowed) or in 0..n_classes−1."""
    labels = check_label_array(labels, n_images, what)
    check_label_range(labels, n_classes, what, allow_unlabelled)
    return labels


def check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise DataError(f"n_classes must be an integer, got {type(n_classes).__name__}")
    if n_classes < 2:
        raise DataError(f"at least 2 classes are needed, got {int(n_classes)}")
    return int(n_classes)


def check_every_class_labelled(labels: np.ndarray, n_classes: int) -> None:
    counts = np.bincount(labels[labels >= 0], minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise DataError(
            f"class {int(missing[0])} has no labelled example; "
            "every class needs at least one (label it, or lower n_classes)"
        )
