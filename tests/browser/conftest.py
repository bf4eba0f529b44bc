"""Fixtures for the browser tests: the real server in a subprocess and Debian's headless Chromium.

One server (embedded mode, SQLite and artifacts in a temporary directory, no broker) and one tiny
trained model are shared by the whole session, so the tests stay fast on two CPU cores.
"""

from collections.abc import Iterator

import httpx
import pytest
from browser_server import CHROMIUM, SMALL_PRESET, launch_chromium, running_server, wait_for_job

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (a browser download does not work here)."""
    if not CHROMIUM.exists():
        pytest.fail("chromium is not on PATH: install Debian's chromium package (scripts/install.sh --test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory, chromium) -> Iterator[str]:
    """The real service in embedded mode, without an API key."""
    with running_server(tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="session")
def trained_model(server) -> dict:
    """A tiny model (digits5k, 2 epochs, small preset) trained through the API; its ModelPublic."""
    body = {"dataset": "digits5k", "labels_per_class": 10, "epochs": 2, "seed": 1, "name": "shared tiny", **SMALL_PRESET}
    answer = httpx.post(f"{server}/train", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    job = wait_for_job(server, answer.json()["id"])
    assert job["status"] == "succeeded", job
    return httpx.get(f"{server}/models/{job['model_id']}", timeout=10).json()


@pytest.fixture
def open_page(chromium):
    """Opens pages in fresh browser contexts; fails the test if a page threw an uncaught error."""
    contexts = []
    errors = []

    def open_(url: str, **context_options):
        context = chromium.new_context(base_url=url, **({"viewport": DESKTOP} | context_options))
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
def page(open_page, server):
    """The web page on a desktop-sized viewport, loaded and with its data-set list filled."""
    page = open_page(server)
    page.goto("/")
    page.wait_for_function("document.querySelector('#train-dataset').options.length >= 2")
    return page
