"""With ADGM_API_KEY set, the page loads, asks for the key, shows nothing of the user's before it
has one, and then sends it on every request: the sample grid and the data set's thumbnails (fetched
with the key into object URLs), the job's live event stream, starting and cancelling a job."""

import io
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from browser_server import SMALL_PRESET, running_server, wait_for_job
from playwright.sync_api import expect

from store.db import make_engine, make_sessionmaker
from store.scopes import Scope
from store.tokens import TokenStore

pytestmark = pytest.mark.browser

API_KEY = "browser-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DATA_ROUTES = ("/sample", "/datasets", "/jobs", "/models")


@pytest.fixture(scope="module")
def keyed_state(tmp_path_factory, chromium, test_digits):
    """A keyed server with a tiny trained model and an upload of 10 labelled and 20 unlabelled digits."""
    directory = tmp_path_factory.mktemp("keyed-server")
    with running_server(directory, api_key=API_KEY) as url:
        body = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 2, "seed": 1, "name": "keyed tiny", **SMALL_PRESET}
        answer = httpx.post(f"{url}/train", json=body, headers=AUTH, timeout=30)
        assert answer.status_code == 202, answer.text
        job = wait_for_job(url, answer.json()["id"], headers=AUTH)
        assert job["status"] == "succeeded", job
        images, labels = test_digits
        first = [int(np.flatnonzero(labels == k)[0]) for k in range(10)]
        rest = [i for i in range(40) if i not in first][:20]
        buffer = io.BytesIO()
        np.savez(buffer, images=images[first + rest], labels=np.array([labels[i] for i in first] + [-1] * 20))
        upload = httpx.post(f"{url}/datasets", files={"file": ("digits.npz", buffer.getvalue())}, data={"name": "keyed upload"},
                            headers=AUTH, timeout=60)
        assert upload.status_code == 201, upload.text
        yield url, directory, job["model_id"], upload.json()["id"]


def data_requests(page) -> list:
    """Every answer the page gets from a data route, as (url, status, whether it sent a key)."""
    seen = []

    def record(response):
        path = urlsplit(response.url).path
        if any(path == route or path.startswith(route + "/") for route in DATA_ROUTES):
            seen.append((response.url, response.status, "authorization" in response.request.headers))

    page.on("response", record)
    return seen


def loaded_images(page) -> list[str]:
    return page.evaluate("[...document.images].filter((img) => img.complete && img.naturalWidth > 0).map((img) => img.src)")


def test_the_page_shows_nothing_before_the_key_and_everything_after(open_page, keyed_state):
    url, _directory, model_id, dataset_id = keyed_state
    page = open_page(url)
    answers = data_requests(page)
    page.goto("/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("Missing API key")
    page.wait_for_timeout(500)  # let anything that would load, load
    assert loaded_images(page) == []
    expect(page.locator("#sample-grid")).to_be_hidden()
    assert page.locator("#model-select option").count() == 0 and page.locator("#jobs-list li").count() == 0
    assert page.locator("#label-dataset option").count() == 0
    assert answers and all(status == 401 and not keyed for _url, status, keyed in answers), answers

    page.fill("#key-input", "not-the-key")  # a wrong key: asked again, with the reason
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("The key was not accepted: Invalid API key")
    assert loaded_images(page) == []
    page.fill("#key-input", API_KEY)
    page.click("#key-submit")
    expect(dialog).to_be_hidden()

    expect(page.locator(f'#model-select option[value="{model_id}"]')).to_have_count(1)
    page.wait_for_function("() => { const img = document.querySelector('#sample-grid'); "
                           "return !img.hidden && img.complete && img.naturalWidth > 0; }")
    grid = page.locator("#sample-grid")
    assert grid.get_attribute("src").startswith("blob:") and model_id in grid.get_attribute("data-url")
    expect(page.locator("#jobs-list li")).to_have_count(1)
    expect(page.locator("#label-dataset")).to_have_value(dataset_id)

    page.click("#label-suggest")
    cards = page.locator("#label-cards .label-card img")
    expect(cards).to_have_count(10)
    page.wait_for_function("() => [...document.querySelectorAll('#label-cards img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    assert all(src.startswith("blob:") for src in loaded_images(page))
    thumbnails = [a for a in answers if f"/datasets/{dataset_id}/images/" in a[0]]
    assert len(thumbnails) == 10 and all(status == 200 and keyed for _url, status, keyed in thumbnails)
    assert all(keyed for _url, status, keyed in answers if status == 200)


def test_the_page_asks_once_then_starts_follows_and_cancels_a_job(open_page, keyed_state):
    url, _directory, _model_id, _dataset_id = keyed_state
    page = open_page(url)
    answers = data_requests(page)
    page.goto("/")
    expect(page.locator("#key-dialog")).to_be_visible()
    page.fill("#key-input", API_KEY)
    page.click("#key-submit")
    page.wait_for_function("document.querySelector('#train-dataset').options.length >= 2")
    page.fill("#train-epochs", "500")  # long enough to be cancelled while it runs
    page.select_option("#train-size", "small")
    page.fill("#train-name", "keyed")
    page.click("#train-submit")
    page.wait_for_function("/^#job=[0-9a-f]{32}$/.test(location.hash)")
    job_id = page.evaluate("location.hash.slice(5)")
    assert httpx.get(f"{url}/jobs/{job_id}", headers=AUTH).json()["name"] == "keyed"

    # the live curve comes from the event stream, read with the key
    expect(page.locator("#job-progress-text")).to_contain_text("Epoch 1 of 500", timeout=120_000)
    events = [a for a in answers if a[0].endswith(f"/jobs/{job_id}/events")]
    assert events and all(status == 200 and keyed for _url, status, keyed in events)
    expect(page.locator("#job-cancel")).to_be_enabled()
    page.click("#job-cancel")
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#key-dialog")).to_be_hidden()  # asked once, at the start
    assert httpx.get(f"{url}/jobs/{job_id}", headers=AUTH).json()["status"] == "cancelled"


def test_an_infer_token_shows_samples_and_says_what_it_cannot(open_page, keyed_state):
    url, directory, model_id, _dataset_id = keyed_state
    engine = make_engine(f"sqlite:///{directory / 'jobs.sqlite'}")
    token = TokenStore(make_sessionmaker(engine)).create(Scope.INFER, "page-reader")[1]
    engine.dispose()
    page = open_page(url)
    page.goto("/")
    page.fill("#key-input", token)
    page.click("#key-submit")
    page.wait_for_function("() => { const img = document.querySelector('#sample-grid'); "
                           "return !img.hidden && img.complete && img.naturalWidth > 0; }")
    expect(page.locator("#jobs-error")).to_contain_text("Scope infer cannot GET /jobs")
    expect(page.locator("#key-dialog")).to_be_hidden()  # a 403 is not a reason to ask again
    assert token not in page.content()
