"""The balanced semi-supervised split of the paper's protocol."""

from __future__ import annotations

import numpy as np

from .errors import DataError
from .sets import ImageSet, SemiSupervisedSplit


def semi_supervised_split(train: ImageSet, labels_per_class: int, seed: int) -> SemiSupervisedSplit:
    """Exactly `labels_per_class` labelled examples of every class, drawn by `seed` among the
    labelled ones; every training image (the chosen ones included) is in the unlabelled set."""
    if isinstance(labels_per_class, bool) or not isinstance(labels_per_class, (int, np.integer)) \
            or labels_per_class < 1:
        raise DataError(f"labels_per_class must be a positive integer, got {labels_per_class!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(train.n_classes):
        candidates = np.flatnonzero(train.labels == label)
        if len(candidates) < labels_per_class:
            raise DataError(
                f"class {label} has only {len(candidates)} labelled examples, "
                f"{labels_per_class} requested; lower labels_per_class"
            )
        chosen.append(rng.choice(candidates, size=labels_per_class, replace=False))
    return _labelled_at(train, np.sort(np.concatenate(chosen)))


def labelled_split(train: ImageSet) -> SemiSupervisedSplit:
    """Every labelled example, however many each class has (the label-efficient loop's labels);
    every training image is in the unlabelled set. Each class needs at least one label."""
    index = np.flatnonzero(train.labels >= 0)
    missing = sorted(set(range(train.n_classes)) - set(train.labels[index].tolist()))
    if missing:
        raise DataError(f"class {missing[0]} has no labelled example; label at least one image of every class")
    return _labelled_at(train, index)


def _labelled_at(train: ImageSet, index: np.ndarray) -> SemiSupervisedSplit:
    """The images at `index` as the labelled set; every training image is in the unlabelled set."""
    return SemiSupervisedSplit(
        labelled_images=train.images[index],
        labelled_labels=train.labels[index],
        unlabelled_images=train.images,
        n_classes=train.n_classes,
        name=train.name,
    )
