"""The "Label next" panel in Chromium: upload a zip of real MNIST digits, label 10 suggested
images with the keyboard, retrain from the model (as the core's warm-start rule resolves it), and
the new model appears; a big zip without labels shows its decoding progress, then the panel offers
representative images to label first."""

import io
import re
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from adgm_core.data import load_mnist
from adgm_core.presets import DataProfile, resolve
from adgm_core.warm_start import retrain

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

    expect(page.locator("#label-strategy")).to_have_value("representative")  # the default, with the model's guesses
    page.click("#label-suggest")
    cards = page.locator("#label-cards .label-card")
    expect(cards).to_have_count(10)
    indices = [int(cards.nth(i).get_attribute("data-index")) for i in range(10)]
    assert all(10 <= index < 70 for index in indices) and len(set(indices)) == 10
    expect(cards.first).to_contain_text(re.compile(r"guess \d \(\d+ %\)"))
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
    # the page sends no epochs: the warm-start rule of the core decides, for the 70 images as the API adapts quick to them
    rule = retrain(resolve("quick", DataProfile((28, 28), 70))["epochs"], 1)
    assert (job["params"]["epochs"], job["params"]["init_weights"]) == (rule.epochs, rule.from_weights)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_MS)
    new_model = httpx.get(f"{server}/jobs/{job_id}").json()["model_id"]
    assert new_model not in models_before
    expect(page.locator(f'#model-select option[value="{new_model}"]')).to_have_count(1, timeout=30_000)


def test_a_big_upload_without_labels_shows_progress_then_offers_first_labels(page, server, mnist_dir, tmp_path):
    train, _test = load_mnist(mnist_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(10):
            archive.writestr(zipfile.ZipInfo(f"{k}/"), b"")  # the classes; none of their images is labelled yet
        for i in range(3000):  # more than ADGM_UPLOAD_BACKGROUND_IMAGES: decoded in the background
            image = io.BytesIO()
            Image.fromarray(train.images[i]).save(image, "PNG")
            archive.writestr(f"unlabelled/{i}.png", image.getvalue())
        archive.writestr("README.md", "3,000 digits, no labels")
    path = tmp_path / "unlabelled.zip"
    path.write_bytes(buffer.getvalue())

    page.set_input_files("#upload-file", str(path))
    page.click("#upload-submit")
    expect(page.locator("#upload-result")).to_contain_text(re.compile(r"Waiting to decode|Decoding images: [\d,]+ of 3,000"))
    expect(page.locator("#upload-progress-row")).to_be_visible()
    expect(page.locator("#upload-result")).to_contain_text("Uploaded 3000 images (0 labelled) in 10 classes",
                                                           timeout=TRAINING_MS)
    expect(page.locator("#upload-result")).to_contain_text("Skipped 1 file(s): README.md")
    expect(page.locator("#upload-progress-row")).to_be_hidden()
    expect(page.locator("#label-hint")).to_contain_text("No class has a label yet")
    expect(page.locator("#label-strategy")).to_have_value("representative")
    dataset_id = page.eval_on_selector("#label-dataset", "select => select.value")

    page.click("#label-suggest")
    cards = page.locator("#label-cards .label-card")
    expect(cards).to_have_count(10)
    indices = [int(cards.nth(i).get_attribute("data-index")) for i in range(10)]
    assert len(set(indices)) == 10 and all(0 <= index < 3000 for index in indices)
    if page.eval_on_selector("#model-select", "select => select.value === ''"):  # no model: the cluster's share
        expect(cards.first).to_contain_text("% of the images")
    else:  # a model of these images' size and classes is selected (another test's): its guess
        expect(cards.first).to_contain_text(re.compile(r"guess \d \(\d+ %\)"))
    expect(cards.first).to_be_focused()
    page.keyboard.press(str(int(train.labels[indices[0]])))
    expect(page.locator("#label-added")).to_contain_text("1 label")
    detail = httpx.get(f"{server}/datasets/{dataset_id}").json()
    assert detail["n_labelled"] == 1 and detail["label_counts"][int(train.labels[indices[0]])]["count"] == 1
