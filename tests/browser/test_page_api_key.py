"""With ADGM_API_KEY set, the page asks for the key when the API wants it, once, and sends it."""

import httpx
import pytest
from browser_server import running_server
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

API_KEY = "browser-test-key"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory, chromium):
    with running_server(tmp_path_factory.mktemp("keyed-server"), api_key=API_KEY) as url:
        yield url


def test_the_page_asks_for_the_key_once_and_sends_it(open_page, keyed_server):
    page = open_page(keyed_server)
    page.goto("/")
    page.wait_for_function("document.querySelector('#train-dataset').options.length >= 2")
    page.fill("#train-epochs", "500")  # long enough to be cancelled while it runs
    page.select_option("#train-size", "small")
    page.fill("#train-name", "keyed")
    dialog = page.locator("#key-dialog")

    # A wrong key: the job is refused and the refusal is shown in words.
    page.click("#train-submit")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("API key")
    page.fill("#key-input", "not-the-key")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#train-error")).to_contain_text("The API key is wrong.")
    assert httpx.get(f"{keyed_server}/jobs").json()["jobs"] == []

    # The right key: the job starts.
    page.click("#train-submit")
    expect(dialog).to_be_visible()
    page.fill("#key-input", API_KEY)
    page.click("#key-submit")
    page.wait_for_function("/^#job=[0-9a-f]{32}$/.test(location.hash)")
    job_id = page.evaluate("location.hash.slice(5)")
    assert [job["id"] for job in httpx.get(f"{keyed_server}/jobs").json()["jobs"]] == [job_id]
    expect(page.locator("#train-error")).to_be_hidden()

    # Cancelling also needs the key: the page sends the one it has and does not ask again.
    expect(page.locator("#job-cancel")).to_be_enabled()
    page.click("#job-cancel")
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=60_000)
    expect(dialog).to_be_hidden()
    assert httpx.get(f"{keyed_server}/jobs/{job_id}").json()["status"] == "cancelled"
