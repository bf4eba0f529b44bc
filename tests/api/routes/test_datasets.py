"""POST /datasets and GET /datasets, and training on an uploaded set."""

import io
import pickle

import numpy as np
import pytest

from adgm_core.data import load_builtin


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def small_set():
    """600 real digits, 20 labelled per class, the rest unlabelled (−1)."""
    train, test = load_builtin("digits5k")
    images, labels = train.images[:600], train.labels[:600].copy()
    keep = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        keep[np.flatnonzero(labels == digit)[:20]] = True
    labels[~keep] = -1
    return images, labels, test.images[:100], test.labels[:100]


def stored_files(settings):
    return sorted(path.name for path in settings.artifacts.datasets_dir.iterdir())


def upload(client, content: bytes, filename="digits.npz", **data):
    return client.post("/datasets", files={"file": (filename, content, "application/octet-stream")}, data=data)


def test_builtin_sets_are_listed(make_settings, start_client, mnist_dir):
    client = start_client(make_settings(mnist_dir=mnist_dir))
    datasets = {d["id"]: d for d in client.get("/datasets").json()["datasets"]}
    assert datasets["digits5k"] == {
        "id": "digits5k", "name": datasets["digits5k"]["name"], "builtin": True, "n_images": 4000,
        "n_labelled": 4000, "n_classes": 10, "image_shape": [28, 28], "created_at": None,
        "class_names": [str(k) for k in range(10)], "version": 0,
    }
    assert datasets["mnist"]["n_images"] == 60000 and datasets["mnist"]["builtin"]


def test_mnist_is_not_listed_without_its_files(client):
    assert [d["id"] for d in client.get("/datasets").json()["datasets"]] == ["digits5k"]


def test_upload_is_stored_listed_and_trainable(make_settings, start_client, small_set):
    settings = make_settings()
    client = start_client(settings)
    images, labels, test_images, test_labels = small_set
    content = npz_bytes(images=images, labels=labels, test_images=test_images, test_labels=test_labels)
    response = upload(client, content, name="my digits")
    assert response.status_code == 201
    dataset = response.json()
    assert dataset["name"] == "my digits" and not dataset["builtin"]
    assert (dataset["n_images"], dataset["n_labelled"], dataset["n_classes"]) == (600, 200, 10)
    assert dataset["image_shape"] == [28, 28] and dataset["created_at"]
    assert stored_files(settings) == [f"{dataset['id']}.npz"]
    with np.load(settings.artifacts.datasets_dir / f"{dataset['id']}.npz") as stored:
        for key, value in dict(images=images, labels=labels, test_images=test_images, test_labels=test_labels).items():
            np.testing.assert_array_equal(stored[key], value)
    listed = client.get("/datasets").json()["datasets"]
    assert listed[-1] == {key: dataset[key] for key in listed[-1]}
    assert dataset["version"] == 1 and [c["count"] for c in dataset["label_counts"]] == [20] * 10

    job = client.post("/train", json={"dataset": dataset["id"], "labels_per_class": 20, "epochs": 1})
    assert job.status_code == 202 and job.json()["dataset"] == dataset["id"]
    too_many = client.post("/train", json={"dataset": dataset["id"], "labels_per_class": 21, "epochs": 1})
    assert too_many.status_code == 422
    assert "only 20 labelled examples" in too_many.json()["detail"]


def test_flat_images_and_the_file_name(client, small_set):
    images, labels, _, _ = small_set
    response = upload(client, npz_bytes(images=images.reshape(600, 784), labels=labels), filename="flat set.npz")
    assert response.status_code == 201
    assert response.json()["image_shape"] == [28, 28]
    assert response.json()["name"] == "flat set"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not an .npz archive"),
        (b"images,labels\n1,2\n", "not an .npz archive"),
        (npz_bytes(images=np.zeros((10, 28, 28), np.uint8)), "no 'labels' array"),
        (npz_bytes(labels=np.zeros(10, np.int64)), "no 'images' array"),
        (npz_bytes(images=np.zeros((10, 28, 28), np.float64), labels=np.arange(10)), "uint8"),
        (npz_bytes(images=np.zeros((10, 28, 28), np.uint8), labels=np.arange(9)), "labels"),
        (npz_bytes(images=np.zeros((10, 28, 28), np.uint8), labels=np.full(10, 50) - 100), "label"),
    ],
)
def test_invalid_uploads_are_refused_and_leave_nothing(make_settings, start_client, content, expected):
    settings = make_settings()
    client = start_client(settings)
    response = upload(client, content)
    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert stored_files(settings) == []
    assert [d["id"] for d in client.get("/datasets").json()["datasets"]] == ["digits5k"]


def test_pickled_arrays_are_refused(client):
    objects = np.array([{"evil": True}] * 10, dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, images=objects, labels=np.arange(10))
    response = upload(client, buffer.getvalue())
    assert response.status_code == 422
    assert "pickle" in response.json()["detail"]
    assert upload(client, pickle.dumps({"images": 1})).status_code == 422


def test_oversized_upload_is_refused_before_it_is_stored(make_settings, start_client, small_set):
    settings = make_settings(max_upload_bytes=64 * 1024)
    client = start_client(settings)
    images, labels, _, _ = small_set
    content = npz_bytes(images=np.random.default_rng(0).integers(0, 255, (600, 28, 28), np.uint8), labels=labels)
    assert len(content) > 64 * 1024
    response = upload(client, content)
    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than the limit of 65536 bytes."
    assert stored_files(settings) == []


def test_an_archive_that_unpacks_too_large_is_refused(make_settings, start_client):
    settings = make_settings(max_dataset_bytes=1_000_000)
    client = start_client(settings)
    zeros = np.zeros((2000, 28, 28), np.uint8)  # 1.5 MB unpacked, a few kB packed
    response = upload(client, npz_bytes(images=zeros, labels=np.tile(np.arange(10), 200)))
    assert response.status_code == 422
    assert "more than the limit of 1,000,000" in response.json()["detail"]
    assert stored_files(settings) == []


def test_upload_needs_a_file(client):
    response = client.post("/datasets", data={"name": "nothing"})
    assert response.status_code == 422
    assert any("file" in error["loc"] for error in response.json()["detail"])


def test_a_streamed_body_is_counted_while_it_is_read(make_settings, start_client):
    settings = make_settings(max_upload_bytes=64 * 1024)
    client = start_client(settings)

    def chunks():  # no Content-Length: the limit must hold on the bytes actually received
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.npz\"\r\n\r\n"
        for _ in range(100):
            yield b"\0" * 1024

    response = client.post("/datasets", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["detail"]
    assert stored_files(settings) == []
