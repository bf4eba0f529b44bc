"""Zips of many images are decoded in the background: POST /datasets answers 202, GET
/uploads/{id} tells the state and progress, and the data set stored is the one a small upload of
the same zip gives; a failure or a stop of the server leaves neither file nor record."""

import io
import time
import zipfile

import numpy as np
import pytest
from PIL import Image
from fastapi.testclient import TestClient

from adgm_core.data import load_mnist
from app.main import create_app


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_mnist(mnist_dir)[0]


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def digits_zip(mnist, n_images: int, extra: dict[str, bytes] | None = None) -> bytes:
    """`n_images` MNIST digits: the first two of each class in class folders, the rest unlabelled."""
    labelled = {int(i) for k in range(10) for i in np.flatnonzero(mnist.labels[:n_images] == k)[:2]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(n_images):
            folder = str(mnist.labels[i]) if i in labelled else "unlabelled"
            archive.writestr(f"{folder}/{i:05d}.png", png(mnist.images[i]))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(client, content: bytes, **data):
    return client.post("/datasets", files={"file": ("digits.zip", content, "application/zip")}, data=data)


def wait_until_finished(client, url: str, timeout: float = 120) -> tuple[dict, list[dict]]:
    """The upload's final state, and every state seen while polling."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        seen.append(body)
        if body["status"] in ("succeeded", "failed"):
            return body, seen
        time.sleep(0.05)
    raise AssertionError(f"the upload did not finish in {timeout} s: {seen[-1]}")


def stored(settings) -> list[str]:
    return sorted(path.name for path in settings.artifacts.datasets_dir.iterdir())


def test_a_big_zip_is_decoded_in_the_background_into_the_same_data_set(make_settings, start_client, mnist):
    settings = make_settings(upload_background_images=100)
    client = start_client(settings)
    content = digits_zip(mnist, 3000, {"README.md": b"# digits\n"})
    response = upload(client, content, name="many digits")
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] in ("queued", "running") and accepted["n_images"] == 3000
    assert accepted["skipped"] == ["README.md (not an image, outside the class folders)"]
    assert response.headers["location"] == accepted["url"] == f"/uploads/{accepted['id']}"
    assert accepted["id"] not in {d["id"] for d in client.get("/datasets").json()["datasets"]}

    final, seen = wait_until_finished(client, accepted["url"])
    assert final["status"] == "succeeded" and final["n_done"] == 3000 and final["error"] is None
    assert any(state["status"] == "running" and 0 < state["n_done"] < 3000 for state in seen), \
        "progress was never seen between the start and the end"
    dataset = final["dataset"]
    assert dataset["id"] == accepted["id"] and dataset["name"] == "many digits"
    assert (dataset["n_images"], dataset["n_labelled"], dataset["version"]) == (3000, 20, 1)
    assert dataset["skipped"] == accepted["skipped"]
    assert client.get(f"/datasets/{dataset['id']}").json()["label_counts"] == dataset["label_counts"]

    # the same zip, small enough for the request itself (a server on the same store): the same arrays
    direct = upload(start_client(make_settings(upload_background_images=5000)), content).json()
    assert direct["skipped"] == dataset["skipped"] and direct["n_labelled"] == 20
    with np.load(settings.artifacts.dataset_path(dataset["id"])) as background, \
            np.load(settings.artifacts.dataset_path(direct["id"])) as foreground:
        for key in ("images", "labels", "n_classes"):
            np.testing.assert_array_equal(background[key], foreground[key])
    assert stored(settings) == sorted([f"{dataset['id']}.npz", f"{direct['id']}.npz"])


def test_a_background_upload_that_fails_leaves_nothing_but_its_reason(make_settings, start_client, mnist):
    settings = make_settings(upload_background_images=100)
    client = start_client(settings)
    response = upload(client, digits_zip(mnist, 300, {"3/broken.png": png(mnist.images[0])[:60]}))
    assert response.status_code == 202
    final, _ = wait_until_finished(client, response.json()["url"])
    assert final["status"] == "failed" and final["dataset"] is None
    assert "3/broken.png" in final["error"] and "skip_invalid=true" in final["error"]
    assert stored(settings) == []
    assert [d["id"] for d in client.get("/datasets").json()["datasets"]] == ["digits5k"]
    # layout mistakes are still answered at once, before anything is decoded
    late = upload(client, digits_zip(mnist, 300, {"loose.png": png(mnist.images[0])}))
    assert late.status_code == 422 and "loose.png" in late.json()["detail"]
    assert client.get(f"/uploads/{'f' * 32}").status_code == 404
    assert client.get("/uploads/not-an-id").status_code == 422


def test_stopping_the_server_fails_the_upload_it_decodes(make_settings, mnist):
    settings = make_settings(upload_background_images=100)
    content = digits_zip(mnist, 4000)
    with TestClient(create_app(settings)) as client:
        accepted = upload(client, content).json()
        deadline = time.monotonic() + 60
        while client.get(accepted["url"]).json()["n_done"] == 0:
            assert time.monotonic() < deadline, "decoding did not start"
            time.sleep(0.05)
    with TestClient(create_app(settings)) as client:
        final = client.get(accepted["url"]).json()
        assert final["status"] == "failed" and "send it again" in final["error"]
        assert [d["id"] for d in client.get("/datasets").json()["datasets"]] == ["digits5k"]
    assert stored(settings) == []
