"""POST /train on an upload records the preset adapted to its images, exactly as the core resolves
it (issue 17, item 5); the job's params are what the worker trains."""

import io

import numpy as np
import pytest

from adgm_core.presets import DataProfile, resolve


def upload_npz(client, side: int, n_images: int, labelled: int | None = None) -> str:
    """An upload of `n_images` random side×side images of 10 classes; `labelled` per class, else all."""
    rng = np.random.default_rng(side)
    images = rng.integers(0, 256, (n_images, side, side), dtype=np.uint8)
    labels = np.arange(n_images) % 10
    if labelled is not None:
        labels = np.where(np.arange(n_images) < 10 * labelled, labels, -1)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    response = client.post("/datasets", files={"file": (f"{side}.npz", buffer.getvalue())})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def params_of_job(client, **body) -> dict:
    response = client.post("/train", json=body)
    assert response.status_code == 202, response.text
    return response.json()["params"]


@pytest.mark.parametrize("side", [8, 14])
def test_an_upload_of_small_images_gets_the_preset_the_core_adapts(client, side):
    dataset = upload_npz(client, side, 1500)
    params = params_of_job(client, dataset=dataset, labels_per_class=5)
    core = resolve("quick", DataProfile((side, side), 1500), labels_per_class=5)
    assert params == {"dataset": dataset, "name": None, "preset": "quick", **core}
    assert params["epochs"] == 54 and params["classifier_shift"] == 1  # 810 steps; 2 px of 28 → 1 px
    assert params != {"dataset": dataset, "name": None, "preset": "quick", **resolve("quick", labels_per_class=5)}

    given = params_of_job(client, dataset=dataset, labels_per_class=5, epochs=7, classifier_shift=0)
    assert given["epochs"] == 7 and given["classifier_shift"] == 0  # explicit values override


def test_a_partly_labelled_upload_is_adapted_the_same_way(client):
    dataset = upload_npz(client, 14, 600, labelled=3)
    params = params_of_job(client, dataset=dataset)
    assert params == {"dataset": dataset, "name": None, "preset": "quick", "use_all_labels": True,
                      **resolve("quick", DataProfile((14, 14), 600))}
    assert params["epochs"] == 134  # 6 steps an epoch: 804 steps


def test_a_28x28_pool_of_5000_images_keeps_the_quick_recipe(client):
    dataset = upload_npz(client, 28, 5000)
    assert params_of_job(client, dataset=dataset) == {"dataset": dataset, "name": None, "preset": "quick",
                                                      **resolve("quick")}
