"""Custom data sets uploaded as .npz archives; nothing in them is ever unpickled."""

from __future__ import annotations

import zipfile
import zlib
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError
from .sets import ImageSet
from .validation import (
    check_every_class_labelled,
    check_images,
    check_label_array,
    check_label_range,
    check_labels,
    check_n_classes,
)

KEYS = ("images", "labels", "test_images", "test_labels", "n_classes")


def _open(source: str | PathLike | BinaryIO, max_bytes: int) -> np.lib.npyio.NpzFile:
    try:
        archive = np.load(source, allow_pickle=False)
    except FileNotFoundError as error:
        raise DataError(f"no such file: {source}") from error
    except (ValueError, EOFError) as error:  # neither zip nor .npy magic (numpy refused to unpickle)
        raise DataError("not an .npz archive (a zip of .npy arrays); "
                        "save the arrays with numpy.savez or numpy.savez_compressed") from error
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"corrupt or truncated .npz archive ({error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError("not an .npz archive: a single .npy array was given; save with numpy.savez")
    declared = sum(member.file_size for member in archive.zip.infolist())
    if declared > max_bytes:
        archive.close()
        raise DataError(f"the archive unpacks to {declared:,} bytes, more than the limit of {max_bytes:,}")
    return archive


def _read(archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray | None:
    if key not in archive.files:
        return None
    try:
        array = archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"'{key}' is an object array (pickled data), which is refused; "
                            "store plain numeric arrays") from error
        raise DataError(f"'{key}' cannot be read: {error}") from error
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"'{key}' is corrupt in the archive ({error})") from error
    if not isinstance(array, np.ndarray):  # numpy hands back non-.npy members as raw bytes
        raise DataError(f"'{key}' is not a .npy array; save the arrays with numpy.savez")
    return array


def _n_classes(value: np.ndarray | None, labels: np.ndarray) -> int:
    if value is None:
        labelled = labels[labels >= 0]
        if labelled.size == 0:
            raise DataError("labels holds no labelled example (all are −1): give n_classes, the number of classes")
        return check_n_classes(int(labelled.max()) + 1)
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer):
        raise DataError(f"n_classes must be a single integer, got {value.dtype} of shape {value.shape}")
    return check_n_classes(int(value))


def _source_name(source: str | PathLike | BinaryIO) -> str:
    if isinstance(source, (str, PathLike)):
        return Path(source).name
    return Path(str(getattr(source, "name", "custom"))).name


def load_npz(path_or_fileobj: str | PathLike | BinaryIO, name: str | None = None,
             max_bytes: int = 1 << 30, every_class_labelled: bool = True) -> tuple[ImageSet, ImageSet | None]:
    """(train, test or None) from an .npz with `images`, `labels` (−1 = unlabelled) and optional
    `test_images`, `test_labels` (all labelled) and `n_classes` (default: largest label + 1).
    `every_class_labelled=False` accepts classes without a label yet (a data set to be labelled)."""
    name = name or _source_name(path_or_fileobj)
    with _open(path_or_fileobj, max_bytes) as archive:
        found = ", ".join(archive.files) or "nothing"
        arrays = {key: _read(archive, key) for key in KEYS}
    for key in ("images", "labels"):
        if arrays[key] is None:
            raise DataError(f"the archive has no '{key}' array (found: {found})")
    images = check_images(arrays["images"], "images")
    labels = check_label_array(arrays["labels"], len(images), "labels")
    n_classes = _n_classes(arrays["n_classes"], labels)
    check_label_range(labels, n_classes, "labels")
    if every_class_labelled:
        check_every_class_labelled(labels, n_classes)
    train = ImageSet(images, labels, n_classes, name)

    test_images, test_labels = arrays["test_images"], arrays["test_labels"]
    if test_images is None and test_labels is None:
        return train, None
    if test_images is None or test_labels is None:
        given, absent = ("test_images", "test_labels") if test_labels is None \
            else ("test_labels", "test_images")
        raise DataError(f"{given} is given without {absent}; give both or neither")
    test_images = check_images(test_images, "test_images")
    if test_images.shape[1:] != images.shape[1:]:
        raise DataError(f"test images are {test_images.shape[1]}×{test_images.shape[2]} but training "
                        f"images are {images.shape[1]}×{images.shape[2]}")
    test_labels = check_labels(test_labels, len(test_images), n_classes, "test_labels",
                               allow_unlabelled=False)
    return train, ImageSet(test_images, test_labels, n_classes, f"{name}-test")
