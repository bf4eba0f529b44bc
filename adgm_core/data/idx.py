"""MNIST's IDX format (http://yann.lecun.com/exdb/mnist/), gzipped or not, and the four-file layout."""

from __future__ import annotations

import gzip
import zlib
from os import PathLike
from pathlib import Path

import numpy as np

from .errors import DataError
from .sets import ImageSet

GZIP_MAGIC = b"\x1f\x8b"
IDX_DTYPES = {  # type code -> big-endian dtype
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | PathLike) -> np.ndarray:
    """Read one IDX file (gzip detected by its magic bytes) into an array of native byte order."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path} is a corrupt or truncated gzip file ({error})") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'}")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX data type code 0x{type_code:02x}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "longer than its header says"
        raise DataError(
            f"{path} is {problem}: shape {shape} needs {expected} data bytes, found {found}"
        )
    data = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    for folder in (directory, directory / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def mnist_files(directory: str | PathLike) -> dict[str, Path]:
    """The four MNIST files in `directory` or `directory/MNIST/raw`; DataError listing the missing ones."""
    directory = Path(directory)
    found = {key: _find(directory, stem) for key, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[key] for key, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"MNIST files missing in {directory} (also looked in {directory / 'MNIST' / 'raw'}, "
            f"with and without .gz): {', '.join(missing)}"
        )
    return found


def _mnist_set(images_path: Path, labels_path: Path, name: str) -> ImageSet:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(f"{images_path} must hold uint8 N×H×W images, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds labels of shape {labels.shape} for {len(images)} images in {images_path}"
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path} holds label {int(labels.max())}; MNIST labels are 0..9")
    return ImageSet(images=images, labels=labels.astype(np.int64), n_classes=10, name=name)


def load_mnist(directory: str | PathLike) -> tuple[ImageSet, ImageSet]:
    """(train, test) from the four IDX files, flat in `directory` or in torchvision's `MNIST/raw/`."""
    files = mnist_files(directory)
    train = _mnist_set(files["train_images"], files["train_labels"], "mnist-train")
    test = _mnist_set(files["test_images"], files["test_labels"], "mnist-test")
    return train, test
