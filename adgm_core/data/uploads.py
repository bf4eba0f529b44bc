"""Data sets as people have them, checked before anything is decoded:

    .npz   `images`, `labels` (−1 = unlabelled) [, `test_images`, `test_labels`, `n_classes`]  (load_npz)
    .npz   Keras style: `x_train`, `y_train` [, `x_test`, `y_test`]
    .zip   an ImageFolder tree: `<class name>/*.png|jpg`, unlabelled images under `unlabelled/` (or
           `unlabeled/`), optionally `test/<class name>/…`
    .zip   a `labels.csv` manifest, `file_name,label`, file names relative to it, an empty label
           meaning unlabelled

A zip whose entries all sit in one top folder is read as if that folder were its root. Images of
any mode and size are decoded by `adgm_core.images` (PNG and JPEG) and brought to one grey size by
`to_model_input`, the preprocessing `/classify` applies: `size` when given, else the most common
size, reduced to fit 28×28.

Refused before anything is decompressed: absolute paths or `..`, symlinks, more bytes than
`max_bytes` or a compression ratio beyond `MAX_RATIO` (a zip bomb), more images than
`max_images` (UploadTooLarge), more than `MAX_CLASSES` classes; then empty class folders, and files that are not
images (listed, or skipped and counted with `skip_invalid`).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from os import PathLike
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from adgm_core.images import ImageError, decode_upload, to_model_input

from .errors import DataError
from .npz import load_npz
from .sets import ImageSet
from .validation import check_images, check_label_array, check_label_range, check_n_classes

MAX_CLASSES = 1000
MAX_RATIO = 100  # uncompressed / compressed size of one member; deflate rarely passes 20 on images
RATIO_FLOOR = 1 << 20  # members smaller than this are never called bombs
DIGIT_SIDE = 28
UNLABELLED = ("unlabelled", "unlabeled")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class UploadTooLarge(DataError):
    """More bytes or images than the server accepts."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 512 << 20
    max_images: int = 100_000
    max_pixels: int = 25_000_000


@dataclass(frozen=True)
class Upload:
    train: ImageSet
    test: ImageSet | None
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)  # files that were not readable images


def load_upload(path: str | PathLike, limits: Limits = Limits(), size: tuple[int, int] | None = None,
                skip_invalid: bool = False, name: str = "upload") -> Upload:
    """The data set in the file at `path`, whichever of the formats above it is."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise DataError("not an .npz archive (numpy.savez) nor a .zip of images") from error
    with archive:
        members = archive.infolist()
        _check_members(members, limits)
        if members and all(m.filename.endswith(".npy") for m in members):
            keras = {PurePosixPath(m.filename).stem for m in members} >= {"x_train", "y_train"}
            return _keras(archive, name) if keras else _npz(path, limits, name)
        return _images(archive, members, limits, size, skip_invalid, name)


def _check_members(members: list[zipfile.ZipInfo], limits: Limits) -> None:
    declared = sum(member.file_size for member in members)
    if declared > limits.max_bytes:
        raise DataError(f"the archive unpacks to {declared:,} bytes, more than the limit of {limits.max_bytes:,}")
    for member in members:
        path = member.filename.replace("\\", "/")
        if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in PurePosixPath(path).parts:
            raise DataError(f"unsafe path in the zip: {member.filename!r} (absolute or with '..'); nothing was kept")
        if (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise DataError(f"the zip holds a symbolic link, {member.filename!r}, which is refused")
        if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * max(1, member.compress_size):
            raise DataError(f"{member.filename!r} would expand {member.file_size // max(1, member.compress_size)}-fold "
                            f"(a zip bomb?); the limit is {MAX_RATIO}-fold")


def _npz(path, limits: Limits, name: str) -> Upload:
    train, test = load_npz(path, name=name, max_bytes=limits.max_bytes)
    _check_count(len(train) + (len(test) if test is not None else 0), limits)
    return Upload(train, test, [str(k) for k in range(train.n_classes)])


def _keras(archive: zipfile.ZipFile, name: str) -> Upload:
    """x_train / y_train / x_test / y_test as `keras.datasets.mnist.load_data` gives them."""
    arrays = {}
    for member in archive.infolist():
        with archive.open(member) as stream:
            try:
                arrays[PurePosixPath(member.filename).stem] = np.load(io.BytesIO(stream.read()), allow_pickle=False)
            except ValueError as error:
                raise DataError(f"{member.filename} cannot be read without unpickling ({error})") from error
    images = check_images(arrays["x_train"], "x_train")
    labels = check_label_array(arrays["y_train"].reshape(-1), len(images), "y_train")
    n_classes = check_n_classes(int(labels.max()) + 1)
    check_label_range(labels, n_classes, "y_train", allow_unlabelled=False)
    train = ImageSet(images, labels, n_classes, name)
    test = None
    if "x_test" in arrays and "y_test" in arrays:
        test_images = check_images(arrays["x_test"], "x_test")
        if test_images.shape[1:] != images.shape[1:]:
            raise DataError(f"x_test images are {test_images.shape[1:]} but x_train images are {images.shape[1:]}")
        test_labels = check_label_array(arrays["y_test"].reshape(-1), len(test_images), "y_test")
        check_label_range(test_labels, n_classes, "y_test", allow_unlabelled=False)
        test = ImageSet(test_images, test_labels, n_classes, f"{name}-test")
    return Upload(train, test, [str(k) for k in range(n_classes)])


def _check_count(n_images: int, limits: Limits) -> None:
    if n_images > limits.max_images:
        raise UploadTooLarge(f"the data set holds {n_images:,} images, more than the limit of {limits.max_images:,}")


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _tree(members: list[zipfile.ZipInfo]) -> tuple[list[tuple[tuple[str, ...], zipfile.ZipInfo]], set[tuple[str, ...]]]:
    """(file parts, member) of every visible file, and every visible directory, relative to the
    single top folder when there is one."""
    entries = [(PurePosixPath(m.filename.replace("\\", "/")).parts, m) for m in members]
    entries = [(parts, m) for parts, m in entries if parts and not _hidden(parts)]
    tops = {parts[0] for parts, m in entries if len(parts) > 1 or m.is_dir()}
    if len(tops) == 1 and all(len(parts) > 1 or m.is_dir() for parts, m in entries):
        top = tops.pop()
        if top not in UNLABELLED and top != "test":
            entries = [(parts[1:], m) for parts, m in entries if parts[1:]]
    files = [(parts, m) for parts, m in entries if not m.is_dir()]
    directories = {parts for parts, m in entries if m.is_dir()}
    directories |= {parts[:i] for parts, _ in files for i in range(1, len(parts))}
    return files, directories


def _images(archive: zipfile.ZipFile, members, limits: Limits, size, skip_invalid: bool, name: str) -> Upload:
    files, directories = _tree(members)
    manifest = [(parts, m) for parts, m in files if parts[-1] == "labels.csv"]
    if manifest:
        train_files, test_files, class_names = _manifest(archive, files, manifest[0])
    else:
        train_files, test_files, class_names = _image_folder(files, directories)
    if len(class_names) > MAX_CLASSES:
        raise DataError(f"{len(class_names):,} classes; at most {MAX_CLASSES:,} are supported")
    if len(class_names) < 2:
        raise DataError(f"at least 2 classes are needed, found {len(class_names)}: {', '.join(class_names) or 'none'}")
    _check_count(len(train_files) + len(test_files), limits)
    decoded, skipped = _decode(archive, train_files + test_files, limits, skip_invalid)
    size = size or _common_size([image for image in decoded.values() if image is not None])
    train = _image_set(train_files, decoded, size, len(class_names), name)
    test = _image_set(test_files, decoded, size, len(class_names), f"{name}-test") if test_files else None
    if test is not None and (test.labels < 0).any():
        raise DataError("test images must all be labelled")
    return Upload(train, test, class_names, skipped)


def _image_folder(files, directories) -> tuple[list, list, list[str]]:
    """([(member, label)] of training images, of test images, class names in sorted order)."""
    train_classes = sorted({parts[0] for parts in directories if len(parts) == 1} - {*UNLABELLED, "test"})
    test_classes = sorted({parts[1] for parts in directories if len(parts) == 2 and parts[0] == "test"})
    if not train_classes:
        raise DataError("no class folders found: put images in <class name>/ folders (and unlabelled ones in "
                        "unlabelled/), or add a labels.csv manifest")
    unknown = sorted(set(test_classes) - set(train_classes))
    if unknown:
        raise DataError(f"test/ has class folders that training lacks: {', '.join(unknown[:5])}")
    index = {name: k for k, name in enumerate(train_classes)}
    train, test, stray = [], [], []
    for parts, member in files:
        if len(parts) == 2 and parts[0] in index:
            train.append((member, index[parts[0]]))
        elif len(parts) == 2 and parts[0] in UNLABELLED:
            train.append((member, -1))
        elif len(parts) == 3 and parts[0] == "test" and parts[1] in index:
            test.append((member, index[parts[1]]))
        else:
            stray.append("/".join(parts))
    if stray:
        raise DataError(f"files outside the layout <class>/<file>, unlabelled/<file>, test/<class>/<file>: "
                        f"{', '.join(stray[:5])}" + (f" and {len(stray) - 5} more" if len(stray) > 5 else ""))
    counts = Counter(label for _, label in train)
    empty = [name for name in train_classes if counts[index[name]] == 0]
    empty += [f"test/{name}" for name in test_classes if not any(label == index[name] for _, label in test)]
    if empty:
        raise DataError(f"empty class folder(s): {', '.join(empty[:5])}; every class needs at least one image")
    return train, test, train_classes


def _manifest(archive: zipfile.ZipFile, files, manifest) -> tuple[list, list, list[str]]:
    parts, member = manifest
    base = parts[:-1]
    by_path = {p: m for p, m in files}
    try:
        rows = list(csv.DictReader(io.StringIO(archive.read(member).decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"labels.csv cannot be read as UTF-8 CSV ({error})") from error
    if not rows or not {"file_name", "label"} <= set(rows[0]):
        raise DataError("labels.csv needs the header 'file_name,label' and at least one row")
    given = [(row["file_name"] or "").strip() for row in rows]
    labels = [(row["label"] or "").strip() for row in rows]
    names = sorted({label for label in labels if label})
    if all(re.fullmatch(r"\d+", label) for label in names):
        names = [str(k) for k in range(max((int(label) for label in names), default=-1) + 1)]
    index = {name: k for k, name in enumerate(names)}
    train, missing = [], []
    for file_name, label in zip(given, labels):
        key = (*base, *PurePosixPath(file_name).parts)
        if key not in by_path:
            missing.append(file_name)
            continue
        train.append((by_path[key], index[str(int(label))] if label.isdigit() else index[label] if label else -1))
    if missing:
        raise DataError(f"labels.csv names files the zip lacks: {', '.join(missing[:5])}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    return train, [], names


def _decode(archive: zipfile.ZipFile, entries, limits: Limits, skip_invalid: bool):
    """{member name: PIL image or None (skipped)}, and the names skipped."""
    decoded, invalid = {}, []
    for member, _ in entries:
        try:
            if not member.filename.lower().endswith(IMAGE_SUFFIXES):
                raise ImageError("unsupported", "not a .png or .jpg file")
            decoded[member.filename] = decode_upload(archive.read(member), limits.max_pixels)
        except (ImageError, zipfile.BadZipFile, OSError, UnidentifiedImageError) as error:
            invalid.append(f"{member.filename} ({error})")
            decoded[member.filename] = None
    if invalid and not skip_invalid:
        raise DataError(f"{len(invalid)} file(s) are not readable images: {'; '.join(invalid[:5])}"
                        + (" …" if len(invalid) > 5 else "") + "; remove them or send skip_invalid=true")
    return decoded, invalid


def _common_size(images: list[Image.Image]) -> tuple[int, int]:
    """(height, width): the most common size, reduced (aspect kept) to fit DIGIT_SIDE × DIGIT_SIDE."""
    if not images:
        raise DataError("no readable image in the upload")
    width, height = Counter(image.size for image in images).most_common(1)[0][0]
    scale = min(1.0, DIGIT_SIDE / max(width, height))
    return max(4, round(height * scale)), max(4, round(width * scale))


def _image_set(entries, decoded, size: tuple[int, int], n_classes: int, name: str) -> ImageSet:
    kept = [(decoded[member.filename], label) for member, label in entries if decoded[member.filename] is not None]
    if not kept:
        raise DataError(f"no readable image left in {name}")
    arrays, labels = [], []
    for image, label in kept:
        try:
            arrays.append(to_model_input(image, size))
        except ImageError as error:
            raise DataError(f"an image of {name} cannot be used: {error}") from error
        labels.append(label)
    return ImageSet(np.stack(arrays), np.array(labels, dtype=np.int64), n_classes, name)
