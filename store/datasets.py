"""Data set names → image sets: the built-in ones and uploaded `.npz` files in the artifact store,
with the labels in effect at a version of the label log (`store.labels`)."""

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy.orm import sessionmaker

from adgm_core.data import DataError, ImageSet, load_builtin, load_npz

from store.config import Settings
from store.ids import ID_PATTERN
from store.labels import LabelLog
from store.tables import Dataset

BUILTIN = {
    "digits5k": "Offline MNIST subset (4,000 train / 1,000 test real digits, shipped with the package)",
    "mnist": "MNIST (60,000 train / 10,000 test) from the IDX files in ADGM_MNIST_DIR",
}
DATASET_ID = re.compile(ID_PATTERN)


def uploaded_path(settings: Settings, dataset_id: str) -> Path:
    if not DATASET_ID.fullmatch(dataset_id):
        raise DataError(f"Unknown data set {dataset_id!r}.")
    return settings.artifacts.dataset_path(dataset_id)


@lru_cache(maxsize=2)
def _builtin(name: str, mnist_dir: Path | None) -> tuple[ImageSet, ImageSet | None]:
    if name == "mnist":
        if mnist_dir is None or not Path(mnist_dir).is_dir():
            raise DataError(
                "MNIST is not available on this server: set ADGM_MNIST_DIR to a directory holding the four "
                "MNIST IDX files, or use the offline data set 'digits5k'."
            )
        return load_builtin("mnist", mnist_dir=mnist_dir)
    return load_builtin(name)


def load_dataset(settings: Settings, name: str) -> tuple[ImageSet, ImageSet | None]:
    """The (train, test) image sets of a built-in name or an uploaded data set id."""
    if name in BUILTIN:
        return _builtin(name, settings.mnist_dir)
    path = uploaded_path(settings, name)
    if not path.is_file():
        raise DataError(f"Unknown data set {name!r}: use 'digits5k', 'mnist' or the id of an uploaded data set.")
    return _uploaded(str(path), name)


@lru_cache(maxsize=4)
def _uploaded(path: str, name: str) -> tuple[ImageSet, ImageSet | None]:
    """An upload's file never changes once written (its id is new), so it is read once."""
    return load_npz(path, name=name, every_class_labelled=False)  # labels come with the label log


def load_labelled(settings: Settings, sessions: sessionmaker, name: str,
                  version: int | None = None) -> tuple[ImageSet, ImageSet | None, int | None]:
    """(train with the labels in effect at `version` (the newest when None), test, that version);
    built-in data sets have no label log and no version."""
    train, test = load_dataset(settings, name)
    if name in BUILTIN:
        return train, test, None
    with sessions() as session:
        record = session.get(Dataset, name)
    if record is None:
        raise DataError(f"Unknown data set {name!r}: it has no record.")
    version = record.version if version is None else version
    if version == 0:  # the file as uploaded, for uploads made before the label log
        return train, test, 0
    labels = np.full(len(train), -1, dtype=np.int64)
    for index, label in LabelLog(sessions).labels(name, version).items():
        labels[index] = label
    return ImageSet(train.images, labels, train.n_classes, train.name), test, version


def class_names(sessions: sessionmaker, name: str, n_classes: int) -> list[str]:
    """The class names of a data set: an upload's own, "0".."K-1" for the built-in digits."""
    if name not in BUILTIN:
        with sessions() as session:
            record = session.get(Dataset, name)
        if record is not None:
            return record.names
    return [str(k) for k in range(n_classes)]
