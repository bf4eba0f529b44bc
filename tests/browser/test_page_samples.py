"""Samples: the grid of a chosen model and label is shown, and a new seed draws a new grid."""

import io
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from browser_actions import as_the_page_writes

pytestmark = pytest.mark.browser


def shown_grid(page, server) -> tuple[dict, np.ndarray]:
    """The query of the grid the page shows (its data-url: the <img> shows it from an object URL),
    and that PNG as pixels (checked against its <img>)."""
    grid = page.locator("#sample-grid")
    expect(grid).to_be_visible()
    url = grid.get_attribute("data-url")
    assert grid.get_attribute("src").startswith("blob:")
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    width, height = grid.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    answer = httpx.get(url)
    assert answer.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(answer.content)).convert("L"))
    assert pixels.shape == (height, width)
    return query, pixels


def test_sample_grid_for_a_chosen_model_and_label_and_a_new_seed(trained_model, page, server):
    page.wait_for_selector(f'#model-select option[value="{trained_model["id"]}"]', state="attached")
    page.select_option("#model-select", trained_model["id"])
    page.select_option("#sample-label", "3")
    page.select_option("#sample-count", "20")
    page.wait_for_function(
        "() => { const img = document.querySelector('#sample-grid'); const url = img.dataset.url || ''; "
        "return url.includes('label=3') && url.includes('n=20') && img.complete && img.naturalWidth > 0; }")

    query, pixels = shown_grid(page, server)
    assert query["model"] == trained_model["id"]
    assert (query["label"], query["n"]) == ("3", "20")
    assert pixels.std() > 0  # a picture, not a blank
    assert page.eval_on_selector("#sample-grid", "img => getComputedStyle(img).imageRendering") == "pixelated"
    expect(page.locator("#sample-seed")).to_have_text(f"seed {query['seed']}")

    first_url = page.locator("#sample-grid").get_attribute("data-url")
    page.click("#sample-new-seed")
    page.wait_for_function(
        "(first) => { const img = document.querySelector('#sample-grid'); "
        "return img.dataset.url !== first && img.complete && img.naturalWidth > 0; }", arg=first_url)
    new_query, new_pixels = shown_grid(page, server)
    assert new_query["seed"] != query["seed"]
    assert {key: new_query[key] for key in ("model", "label", "n")} == {key: query[key] for key in ("model", "label", "n")}
    assert new_pixels.shape == pixels.shape
    assert not np.array_equal(new_pixels, pixels)


def test_the_model_picker_shows_the_models_self_consistency(trained_model, page):
    consistency = trained_model["metrics"]["self_consistency"]
    assert 0.0 <= consistency <= 1.0
    option = page.locator(f'#model-select option[value="{trained_model["id"]}"]')
    expect(option).to_contain_text(f"samples self-consistent {as_the_page_writes(page, consistency * 100, 0)}%")
