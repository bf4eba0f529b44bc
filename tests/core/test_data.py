"""adgm_core.data on the real MNIST files, the offline digits, and every bad-input path."""

import gzip
import io
import pickle
import re
import zipfile

import numpy as np
import pytest

from adgm_core.data import (
    DataError,
    ImageSet,
    load_builtin,
    load_mnist,
    load_npz,
    load_offline_digits,
    read_idx,
    semi_supervised_split,
)

# From /work/shared/data/mnist/README.md
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


# --- IDX -----------------------------------------------------------------------------------------

def test_read_idx_real_gzipped_files(mnist_dir):
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    test_labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == MNIST_TEST_COUNTS
    # ink bright on a black background, strokes reaching full intensity
    assert images[:, 0, :].mean() < 0.1 and np.median(images) == 0 and images.max() == 255


def test_read_idx_uncompressed_equals_gzipped(mnist_dir, tmp_path):
    plain = tmp_path / "t10k-labels.idx"  # no telling suffix: detection is by magic bytes
    plain.write_bytes(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    disguised = tmp_path / "labels-no-gz-suffix"
    disguised.write_bytes((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    expected = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(read_idx(plain), expected)
    np.testing.assert_array_equal(read_idx(disguised), expected)


def test_read_idx_other_dtypes_are_native_order(tmp_path):
    values = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + np.array([2, 3], ">u4").tobytes() + values.tobytes())
    result = read_idx(path)
    assert result.dtype == np.int32 and result.dtype.isnative
    np.testing.assert_array_equal(result, [[-3, -2, -1], [0, 1, 2]])


@pytest.fixture(scope="module")
def test_labels_raw(mnist_dir) -> bytes:
    return gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())


@pytest.mark.parametrize("mangle, message", [
    (lambda raw: raw[:5000], "truncated: shape (10000,) needs 10000 data bytes, found 4992"),
    (lambda raw: raw + b"\x00", "longer than its header says"),
    (lambda raw: b"\x12\x34" + raw[2:], "bad magic number 12340801"),
    (lambda raw: raw[:2] + b"\x07" + raw[3:], "unknown IDX data type code 0x07"),
    (lambda raw: raw[:6], "truncated inside its header"),
    (lambda raw: b"", "bad magic number (empty)"),
])
def test_read_idx_bad_files(tmp_path, test_labels_raw, mangle, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(mangle(test_labels_raw))
    with pytest.raises(DataError, match=re.escape(message)):
        read_idx(path)


def test_read_idx_truncated_gzip(mnist_dir, tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2000])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read .*nothing-here"):
        read_idx(tmp_path / "nothing-here")


# --- load_mnist ----------------------------------------------------------------------------------

def _link_mnist(source, target_dir):
    target_dir.mkdir(parents=True)
    for stem in MNIST_STEMS:
        (target_dir / f"{stem}.gz").symlink_to(source / f"{stem}.gz")


def test_load_mnist_flat(mnist):
    train, test = mnist
    assert (len(train), len(test)) == (60000, 10000)
    assert train.image_shape == (28, 28) and train.n_classes == 10
    assert (train.name, test.name) == ("mnist-train", "mnist-test")
    assert train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == MNIST_TEST_COUNTS


def test_load_mnist_torchvision_layout(mnist_dir, mnist, tmp_path):
    _link_mnist(mnist_dir, tmp_path / "MNIST" / "raw")
    train, test = load_mnist(tmp_path)
    assert train.fingerprint() == mnist[0].fingerprint()
    np.testing.assert_array_equal(test.labels, mnist[1].labels)


def test_load_mnist_lists_missing_files(mnist_dir, tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").symlink_to(mnist_dir / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError) as caught:
        load_mnist(tmp_path)
    message = str(caught.value)
    assert "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in message
    assert "train-images-idx3-ubyte," not in message
    assert "MNIST/raw" in message


def test_load_builtin(mnist_dir, mnist):
    train, _ = load_builtin("mnist", mnist_dir=mnist_dir)
    assert train.fingerprint() == mnist[0].fingerprint()
    assert load_builtin("digits5k")[0].name == "digits5k-train"
    with pytest.raises(DataError, match="unknown data set 'cifar'; the built-in ones are digits5k, mnist"):
        load_builtin("cifar")


def test_load_builtin_mnist_without_files_or_download_root(tmp_path):
    with pytest.raises(DataError, match="MNIST files missing"):
        load_builtin("mnist", mnist_dir=tmp_path)
    with pytest.raises(DataError, match="give a directory holding its four IDX files"):
        load_builtin("mnist")


# --- offline digits ------------------------------------------------------------------------------

def test_offline_digits():
    train, test = load_offline_digits()
    assert (len(train), len(test)) == (4000, 1000)
    assert (train.name, test.name) == ("digits5k-train", "digits5k-test")
    assert train.n_classes == test.n_classes == 10
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    for images in (train.images, test.images):
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
        assert images.min() == 0 and images.max() == 255
        # ink bright: the border is background (0) and most pixels are background
        assert images[:, :, 0].mean() < 1 and np.median(images) == 0
    train_rows = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in train_rows for image in test.images)
    again, _ = load_offline_digits()
    assert again.fingerprint() == train.fingerprint()


def test_offline_digits_are_real_mnist_digits(mnist):
    """Class means of the offline set look like those of MNIST's training set (same digits)."""
    train, _ = load_offline_digits()
    mnist_train = mnist[0]
    for digit in (0, 1, 7):
        ours = train.images[train.labels == digit].mean(axis=0).ravel()
        theirs = mnist_train.images[mnist_train.labels == digit].mean(axis=0).ravel()
        assert np.corrcoef(ours, theirs)[0, 1] > 0.95


# --- npz -----------------------------------------------------------------------------------------

def _digits(n=30, classes=3, side=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    labels = np.arange(n) % classes
    return images, labels


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_round_trip(tmp_path):
    images, labels = _digits()
    labels = labels.copy()
    labels[::2] = -1
    test_images, test_labels = _digits(n=9, seed=1)
    path = _npz(tmp_path / "mine.npz", images=images, labels=labels.astype(np.int16),
                test_images=test_images, test_labels=test_labels)
    train, test = load_npz(path)
    np.testing.assert_array_equal(train.images, images)
    np.testing.assert_array_equal(train.labels, labels)
    assert train.labels.dtype == np.int64 and train.n_classes == 3 and train.name == "mine.npz"
    np.testing.assert_array_equal(test.images, test_images)
    assert test.name == "mine.npz-test"


def test_npz_flat_images_are_reshaped_and_file_objects_work(tmp_path):
    images, labels = _digits(side=6)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.reshape(len(images), 36), labels=labels,
                        n_classes=np.int64(5))
    buffer.seek(0)
    # classes 3 and 4 have no labelled example, so n_classes=5 is refused ...
    with pytest.raises(DataError, match="class 3 has no labelled example"):
        load_npz(buffer, name="upload")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.reshape(len(images), 36), labels=labels)
    buffer.seek(0)
    train, test = load_npz(buffer, name="upload")
    assert test is None and train.name == "upload"
    assert train.image_shape == (6, 6)
    np.testing.assert_array_equal(train.images, images)


BAD_NPZ_CASES = {
    "float images": (dict(images=np.zeros((30, 8, 8), np.float32)),
                     "images must be uint8 (0..255), got float32"),
    "4-D images": (dict(images=np.zeros((30, 8, 8, 3), np.uint8)), "got a 4-D array of shape (30, 8, 8, 3)"),
    "non-square D": (dict(images=np.zeros((30, 50), np.uint8)), "D = 50, which is not a perfect square"),
    "empty": (dict(images=np.zeros((0, 8, 8), np.uint8), labels=np.zeros(0, np.int64)), "images is empty"),
    "tiny sides": (dict(images=np.zeros((30, 3, 3), np.uint8)), "between 4 and 256 pixels, got 3×3"),
    "huge sides": (dict(images=np.zeros((2, 300, 8), np.uint8), labels=np.array([0, 1])), "got 300×8"),
    "length mismatch": (dict(labels=np.arange(29) % 3), "labels has 29 entries but there are 30 images"),
    "float labels": (dict(labels=np.zeros(30)), "labels must be integers, got float64"),
    "2-D labels": (dict(labels=np.zeros((30, 1), np.int64)),
                   "labels must be one-dimensional (N,), got shape (30, 1)"),
    "label 10 of 10": (dict(labels=np.arange(30) % 10 + (np.arange(30) == 29) * 1, n_classes=np.int64(10)),
                       "labels must be −1 (unlabelled) or 0..9, found 10"),
    "label -2": (dict(labels=np.where(np.arange(30) == 4, -2, np.arange(30) % 3)), "found -2"),
    "class without label": (dict(labels=np.where(np.arange(30) % 3 == 1, -1, np.arange(30) % 3)),
                            "class 1 has no labelled example"),
    "one class": (dict(labels=np.zeros(30, np.int64)), "at least 2 classes are needed, got 1"),
    "all unlabelled": (dict(labels=np.full(30, -1)), "no labelled example"),
    "bad n_classes": (dict(n_classes=np.array([3, 4])), "n_classes must be a single integer"),
    "no labels": (dict(labels=None), "the archive has no 'labels' array (found: images)"),
    "test images alone": (dict(test_images=np.zeros((5, 8, 8), np.uint8)),
                          "test_images is given without test_labels"),
    "unlabelled test": (dict(test_images=np.zeros((3, 8, 8), np.uint8), test_labels=np.array([0, -1, 2])),
                        "test_labels must be 0..2, found -1"),
    "test shape": (dict(test_images=np.zeros((3, 9, 9), np.uint8), test_labels=np.array([0, 1, 2])),
                   "test images are 9×9 but training images are 8×8"),
    "object array": (dict(labels=np.array([0, 1, "x"] * 10, dtype=object)),
                     "'labels' is an object array (pickled data), which is refused"),
}


@pytest.mark.parametrize("case", BAD_NPZ_CASES, ids=list(BAD_NPZ_CASES))
def test_npz_bad_input(tmp_path, case):
    changes, message = BAD_NPZ_CASES[case]
    images, labels = _digits()
    arrays = {"images": images, "labels": labels, **changes}
    arrays = {key: value for key, value in arrays.items() if value is not None}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)  # object arrays are pickled by numpy: exactly what must be refused
    with pytest.raises(DataError, match=re.escape(message)):
        load_npz(path)


class _Unpicklable:
    def __reduce__(self):
        return (pytest.fail, ("load_npz unpickled something",))


def test_npz_never_unpickles(tmp_path):
    bomb = pickle.dumps(_Unpicklable())
    hidden = tmp_path / "hidden.npz"
    with zipfile.ZipFile(hidden, "w") as archive:
        archive.writestr("images.npy", bomb)
        archive.writestr("labels.npy", bomb)
    with pytest.raises(DataError, match="'images' is not a .npy array"):
        load_npz(hidden)
    plain = tmp_path / "plain.npz"
    plain.write_bytes(bomb)
    with pytest.raises(DataError, match="not an .npz archive"):
        load_npz(plain)


@pytest.mark.parametrize("content, message", [
    (b"this is text, not a zip", "not an .npz archive"),
    (b"", "not an .npz archive"),
])
def test_npz_not_a_zip(tmp_path, content, message):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_npz(path)


def test_npz_single_npy_and_truncated_zip(tmp_path):
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as handle:
        np.save(handle, np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(DataError, match="a single .npy array was given"):
        load_npz(npy)
    images, labels = _digits()
    whole = tmp_path / "whole.npz"
    np.savez(whole, images=images, labels=labels)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[:1500])
    with pytest.raises(DataError, match="corrupt or truncated .npz archive"):
        load_npz(cut)


def test_npz_size_limit(tmp_path):
    images, labels = _digits()
    path = _npz(tmp_path / "ok.npz", images=images, labels=labels)
    with pytest.raises(DataError, match="unpacks to .* bytes, more than the limit of 1,000"):
        load_npz(path, max_bytes=1000)


# --- ImageSet ------------------------------------------------------------------------------------

def test_imageset_checks_and_fingerprint():
    images, labels = _digits()
    data = ImageSet(images, labels.astype(np.int64), 3, "x")
    assert len(data) == 30 and data.image_shape == (8, 8)
    same = ImageSet(images.copy(), labels.astype(np.int64), 3, "y")
    assert data.fingerprint() == same.fingerprint() and len(data.fingerprint()) == 16
    changed = images.copy()
    changed[0, 0, 0] ^= 1
    assert ImageSet(changed, labels.astype(np.int64), 3, "x").fingerprint() != data.fingerprint()
    with pytest.raises(DataError, match="must be int64"):
        ImageSet(images, labels.astype(np.int32), 3, "x")
    with pytest.raises(DataError, match="found 2"):
        ImageSet(images, labels.astype(np.int64), 2, "x")


# --- semi-supervised split -----------------------------------------------------------------------

def test_split_on_mnist(mnist):
    train = mnist[0]
    split = semi_supervised_split(train, labels_per_class=10, seed=0)
    assert np.bincount(split.labelled_labels).tolist() == [10] * 10
    assert split.labelled_labels.dtype == np.int64 and split.n_classes == 10
    assert split.name == "mnist-train" and split.image_shape == (28, 28)
    np.testing.assert_array_equal(split.unlabelled_images, train.images)
    # each labelled example is a distinct training image carrying its true label
    index = {image.tobytes(): i for i, image in enumerate(train.images)}
    positions = [index[image.tobytes()] for image in split.labelled_images]
    assert len(set(positions)) == 100
    np.testing.assert_array_equal(train.labels[positions], split.labelled_labels)


def test_split_determinism_and_seed_dependence():
    train, _ = load_offline_digits()
    first = semi_supervised_split(train, 5, seed=3)
    again = semi_supervised_split(train, 5, seed=3)
    other = semi_supervised_split(train, 5, seed=4)
    np.testing.assert_array_equal(first.labelled_images, again.labelled_images)
    assert first.fingerprint() == again.fingerprint()
    assert not np.array_equal(first.labelled_images, other.labelled_images)
    assert first.fingerprint() != other.fingerprint()


def test_split_ignores_unlabelled_examples_and_reports_too_few():
    images, labels = _digits(n=30, classes=3)
    labels = labels.astype(np.int64)
    labels[[3, 6, 9, 12, 15, 18, 21]] = -1  # class 0 keeps 3 labelled examples: 0, 24, 27
    train = ImageSet(images, labels, 3, "few")
    split = semi_supervised_split(train, 3, seed=0)
    chosen_zero = {image.tobytes() for image in split.labelled_images[split.labelled_labels == 0]}
    assert chosen_zero == {images[i].tobytes() for i in (0, 24, 27)}
    assert len(split.unlabelled_images) == 30
    with pytest.raises(DataError, match="class 0 has only 3 labelled examples, 4 requested"):
        semi_supervised_split(train, 4, seed=0)
    with pytest.raises(DataError, match="labels_per_class must be a positive integer"):
        semi_supervised_split(train, 0, seed=0)
