"""The "Label next" panel in Chromium: upload a zip of real MNIST digits, label 10 suggested
images with the keyboard, retrain warm, and the new model appears."""

import io
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from adgm_core.data import load_mnist

pytestmark = pytest.mark.browser

TRAINING_MS = 180_000


def digits_zip(mnist_dir) -> tuple[bytes, np.ndarray]:
    """Folders 0..9 with one digit each, and 60 unlabelled digits; (zip, labels of the unlabelled)."""
    train, _test = load_mnist(mnist_dir)
    buffer = io.BytesIO()

    def png(image):
        out = io.BytesIO()
        Image.fromarray(image).save(out, "PNG")
        return out.getvalue()

    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(10):
            archive.writestr(f"{k}/first.png", png(train.images[np.flatnonzero(train.labels == k)[0]]))
        for i in range(30_000, 30_060):
            archive.writestr(f"unlabelled/{i}.png", png(train.images[i]))
    return buffer.getvalue(), train.labels[30_000:30_060]


def test_label_ten_suggestions_by_keyboard_and_retrain(page, server, trained_model, mnist_dir, tmp_path):
    content, hidden = digits_zip(mnist_dir)
    path = tmp_path / "digits.zip"
    path.write_bytes(content)
    page.reload()
    page.wait_for_function("document.querySelector('#model-select').options.length >= 1")
    page.select_option("#model-select", trained_model["id"])

    page.set_input_files("#upload-file", str(path))
    page.click("#upload-submit")
    expect(page.locator("#upload-result")).to_contain_text("Uploaded 70 images (10 labelled) in 10 classes")
    expect(page.locator("#label-counts")).to_contain_text("0: 1")
    dataset_id = page.eval_on_selector("#label-dataset", "select => select.value")

    page.click("#label-suggest")
    cards = page.locator("#label-cards .label-card")
    expect(cards).to_have_count(10)
    indices = [int(cards.nth(i).get_attribute("data-index")) for i in range(10)]
    assert all(10 <= index < 70 for index in indices) and len(set(indices)) == 10
    expect(cards.first).to_be_focused()
    for n, index in enumerate(indices):  # the upload keeps the zip's order: class folders, then unlabelled
        expect(page.locator(f'.label-card[data-index="{index}"]')).to_be_focused()
        page.keyboard.press(str(int(hidden[index - 10])))
        expect(page.locator("#label-added")).to_contain_text(f"{n + 1} label")
    expect(page.locator("#label-added")).to_contain_text("10 labels added")
    detail = httpx.get(f"{server}/datasets/{dataset_id}").json()
    assert detail["n_labelled"] == 20 and detail["version"] == 11
    log = httpx.get(f"{server}/datasets/{dataset_id}/labels", params={"limit": 10}).json()["entries"]
    assert sorted((e["index"], e["label"]) for e in log) == sorted((i, int(hidden[i - 10])) for i in indices)

    models_before = {m["id"] for m in httpx.get(f"{server}/models").json()["models"]}
    page.click("#label-retrain")
    page.wait_for_function("/^#job=[0-9a-f]{32}$/.test(location.hash)")
    job_id = page.evaluate("location.hash.slice(5)")
    job = httpx.get(f"{server}/jobs/{job_id}").json()
    assert job["params"]["init_model"] == trained_model["id"] and job["dataset_version"] == 11
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_MS)
    new_model = httpx.get(f"{server}/jobs/{job_id}").json()["model_id"]
    assert new_model not in models_before
    expect(page.locator(f'#model-select option[value="{new_model}"]')).to_have_count(1, timeout=30_000)
