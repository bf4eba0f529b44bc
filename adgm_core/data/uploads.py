"""Data sets as people have them, checked before anything is decoded:

    .npz   `images`, `labels` (−1 = unlabelled) [, `test_images`, `test_labels`, `n_classes`]  (load_npz)
    .npz   Keras style: `x_train`, `y_train` [, `x_test`, `y_test`]
    .zip   an ImageFolder tree: `<class name>/*.png|jpg`, unlabelled images under `unlabelled/` (or
           `unlabeled/`), optionally `test/<class name>/…`
    .zip   a `labels.csv` manifest, `file_name,label`, file names relative to it, an empty label
           meaning unlabelled

A zip whose entries all sit in one top folder is read as if that folder were its root. A class
folder is a top folder (other than `unlabelled/` and `test/`) that holds an image, or nothing at
all (a class none of whose images is labelled yet); files that are not images (README, CSV, JSON, …) outside the class folders are skipped and
listed, as are the files a `labels.csv` does not name. Images of any mode and size are decoded
by `adgm_core.images` (PNG and JPEG) and brought to one grey size by `to_model_input`, the
preprocessing `/classify` applies: `size` when given, else the most common size (read from the
headers of up to `SIZE_SAMPLE` images), reduced to fit 28×28.

Refused before anything is decompressed (`plan_upload`): absolute paths or `..`, symlinks, more
bytes than `max_bytes` or a compression ratio beyond `MAX_RATIO` (a zip bomb), more images than
`max_images` (UploadTooLarge), more than `MAX_CLASSES` classes, empty class folders under `test/`. Then
`UploadPlan.load` decodes the images one by one. Bad files — images outside the layout, files
inside a class folder that are not images, images that cannot be decoded or show no strokes —
are refused, naming them, or with `skip_invalid` skipped and listed.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import PurePosixPath

import numpy as np
from PIL import UnidentifiedImageError

from adgm_core.images import ImageError, decode_upload, header_size, to_model_input

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
SIZE_SAMPLE = 2000  # image headers read to find the most common size
NOT_AN_IMAGE = "not an image, outside the class folders"


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
    skipped: list[str] = field(default_factory=list)  # "<file> (why)" of every file of the upload not used


@dataclass
class UploadPlan:
    """An upload whose layout was read and checked; `load` decodes its images (slow for many).
    An .npz is loaded while planning: it has nothing left to decode."""

    path: str | PathLike
    limits: Limits
    size: tuple[int, int] | None
    skip_invalid: bool
    name: str
    class_names: list[str]
    train_files: list[tuple[zipfile.ZipInfo, int]] = field(default_factory=list)  # (member, label −1..K−1)
    test_files: list[tuple[zipfile.ZipInfo, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    loaded: Upload | None = None

    @property
    def images_to_decode(self) -> int:
        return len(self.train_files) + len(self.test_files)

    def load(self, progress: Callable[[int, int], None] | None = None) -> Upload:
        """The data set; `progress(done, total)` after each image (it may raise to stop)."""
        if self.loaded is not None:
            return self.loaded
        with zipfile.ZipFile(self.path) as archive:
            return self._decode(archive, progress)

    def _decode(self, archive: zipfile.ZipFile, progress) -> Upload:
        entries = self.train_files + self.test_files
        size = self.size or _common_size(archive, [member for member, _ in entries])
        arrays, invalid = [], []
        for done, (member, _label) in enumerate(entries, 1):
            try:
                if not member.filename.lower().endswith(IMAGE_SUFFIXES):
                    raise ImageError("unsupported", "not a .png or .jpg file")
                arrays.append(to_model_input(decode_upload(archive.read(member), self.limits.max_pixels), size))
            except (ImageError, zipfile.BadZipFile, OSError, UnidentifiedImageError) as error:
                invalid.append(f"{member.filename} ({error})")
                arrays.append(None)
            if progress is not None:
                progress(done, len(entries))
        if invalid and not self.skip_invalid:
            raise DataError(f"{len(invalid)} file(s) are not readable images: {'; '.join(invalid[:5])}"
                            + (" …" if len(invalid) > 5 else "") + "; remove them or send skip_invalid=true")
        n_train = len(self.train_files)
        train = _image_set(self.train_files, arrays[:n_train], len(self.class_names), self.name)
        test = None
        if self.test_files:
            test = _image_set(self.test_files, arrays[n_train:], len(self.class_names), f"{self.name}-test")
        if test is not None and (test.labels < 0).any():
            raise DataError("test images must all be labelled")
        return Upload(train, test, self.class_names, self.skipped + invalid)


def load_upload(path: str | PathLike, limits: Limits = Limits(), size: tuple[int, int] | None = None,
                skip_invalid: bool = False, name: str = "upload") -> Upload:
    """The data set in the file at `path`, whichever of the formats above it is."""
    return plan_upload(path, limits, size, skip_invalid, name).load()


def plan_upload(path: str | PathLike, limits: Limits = Limits(), size: tuple[int, int] | None = None,
                skip_invalid: bool = False, name: str = "upload") -> UploadPlan:
    """The upload at `path` read as far as its layout; DataError (or UploadTooLarge) when that is wrong."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise DataError("not an .npz archive (numpy.savez) nor a .zip of images") from error
    with archive:
        members = archive.infolist()
        _check_members(members, limits)
        plan = UploadPlan(path, limits, size, skip_invalid, name, class_names=[])
        if members and all(m.filename.endswith(".npy") for m in members):
            keras = {PurePosixPath(m.filename).stem for m in members} >= {"x_train", "y_train"}
            plan.loaded = _keras(archive, name) if keras else _npz(path, limits, name)
            plan.class_names = plan.loaded.class_names
            return plan
        _plan_images(archive, members, plan)
        return plan


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
    train, test = load_npz(path, name=name, max_bytes=limits.max_bytes, every_class_labelled=False)
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


def _plan_images(archive: zipfile.ZipFile, members, plan: UploadPlan) -> None:
    files, directories = _tree(members)
    manifest = [(parts, m) for parts, m in files if parts[-1] == "labels.csv"]
    if manifest:
        train_files, test_files, class_names, skipped = _manifest(archive, files, manifest[0])
    else:
        train_files, test_files, class_names, skipped = _image_folder(files, directories, plan.skip_invalid)
    if len(class_names) > MAX_CLASSES:
        raise DataError(f"{len(class_names):,} classes; at most {MAX_CLASSES:,} are supported")
    if len(class_names) < 2:
        raise DataError(f"at least 2 classes are needed, found {len(class_names)}: {', '.join(class_names) or 'none'}")
    _check_count(len(train_files) + len(test_files), plan.limits)
    plan.train_files, plan.test_files, plan.class_names, plan.skipped = train_files, test_files, class_names, skipped


def _is_image(parts: tuple[str, ...]) -> bool:
    return parts[-1].lower().endswith(IMAGE_SUFFIXES)


def _image_folders(files, directories, depth: int, parent: tuple[str, ...] = ()) -> list[str]:
    """Names of the folders `depth` deep under `parent` that hold an image directly, or nothing at all."""
    candidates = {parts[-1] for parts in directories if len(parts) == depth and parts[:-1] == parent}
    holding = {parts[depth - 1] for parts, _ in files if len(parts) > depth - 1 and parts[:depth - 1] == parent}
    with_images = {parts[depth - 1] for parts, _ in files
                   if len(parts) == depth + 1 and parts[:depth - 1] == parent and _is_image(parts)}
    return sorted(name for name in candidates if name in with_images or name not in holding)


def _image_folder(files, directories, skip_invalid: bool) -> tuple[list, list, list[str], list[str]]:
    """([(member, label)] of training images, of test images, class names in sorted order, the
    files skipped)."""
    train_classes = sorted(set(_image_folders(files, directories, 1)) - {*UNLABELLED, "test"})
    test_classes = _image_folders(files, directories, 2, ("test",))
    if not train_classes:
        raise DataError("no class folders found: put images in <class name>/ folders (and unlabelled ones in "
                        "unlabelled/), or add a labels.csv manifest")
    unknown = sorted(set(test_classes) - set(train_classes))
    if unknown:
        raise DataError(f"test/ has class folders that training lacks: {', '.join(unknown[:5])}")
    index = {name: k for k, name in enumerate(train_classes)}
    train, test, stray, skipped = [], [], [], []
    for parts, member in files:
        if len(parts) == 2 and parts[0] in index:
            train.append((member, index[parts[0]]))
        elif len(parts) == 2 and parts[0] in UNLABELLED:
            train.append((member, -1))
        elif len(parts) == 3 and parts[0] == "test" and parts[1] in index:
            test.append((member, index[parts[1]]))
        elif _is_image(parts) or parts[0] in index or parts[0] in UNLABELLED or parts[:2] in {("test", c) for c in index}:
            stray.append(member.filename)
        else:
            skipped.append(f"{member.filename} ({NOT_AN_IMAGE})")
    if stray and not skip_invalid:
        raise DataError(f"files outside the layout <class>/<file>, unlabelled/<file>, test/<class>/<file>: "
                        f"{', '.join(stray[:5])}" + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
                        + "; move them, or send skip_invalid=true to skip them")
    skipped += [f"{name} (outside the layout <class>/<file>, unlabelled/<file>, test/<class>/<file>)" for name in stray]
    empty = [f"test/{name}" for name in test_classes if not any(label == index[name] for _, label in test)]
    if empty:
        raise DataError(f"empty test class folder(s): {', '.join(empty[:5])}; remove them or add their images")
    return train, test, train_classes, skipped


def _manifest(archive: zipfile.ZipFile, files, manifest) -> tuple[list, list, list[str], list[str]]:
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
    named = {id(m) for m, _ in train} | {id(member)}
    skipped = [f"{m.filename} (not named in labels.csv)" for _, m in files if id(m) not in named]
    return train, [], names, skipped


def _common_size(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> tuple[int, int]:
    """(height, width): the most common size in the headers of up to SIZE_SAMPLE images, evenly
    spread over the upload, reduced (aspect kept) to fit DIGIT_SIDE × DIGIT_SIDE."""
    sample = members[::max(1, -(-len(members) // SIZE_SAMPLE))]
    sizes = Counter()
    for member in sample:
        with archive.open(member) as stream:
            found = header_size(stream)
        if found is not None:
            sizes[found] += 1
    if not sizes:
        raise DataError("no readable image in the upload")
    width, height = sizes.most_common(1)[0][0]
    scale = min(1.0, DIGIT_SIDE / max(width, height))
    return max(4, round(height * scale)), max(4, round(width * scale))


def _image_set(entries, arrays: list[np.ndarray | None], n_classes: int, name: str) -> ImageSet:
    kept = [(array, label) for (_member, label), array in zip(entries, arrays) if array is not None]
    if not kept:
        raise DataError(f"no readable image left in {name}")
    return ImageSet(np.stack([array for array, _ in kept]), np.array([label for _, label in kept], dtype=np.int64),
                    n_classes, name)
