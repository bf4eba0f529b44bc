"""Data set names → image sets: the built-in ones and uploaded `.npz` files in the artifact store."""

import re
from functools import lru_cache
from pathlib import Path

from adgm_core.data import DataError, ImageSet, load_builtin, load_npz

from store.config import Settings
from store.ids import ID_PATTERN

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
    return load_npz(path, name=name)
