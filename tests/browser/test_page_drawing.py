"""Draw and classify: a mouse-drawn digit gets a bar per class, the model's own answer; analogies."""

import io

import httpx
import pytest
from browser_actions import canvas_png, draw_with_mouse, inked_pixels, shown_probabilities
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_drawn_digit_is_classified_with_a_bar_per_class(trained_model, page, server):
    page.wait_for_selector(f'#model-select option[value="{trained_model["id"]}"]', state="attached")
    page.select_option("#model-select", trained_model["id"])

    page.click("#draw-classify")
    expect(page.locator("#draw-error")).to_have_text("Draw a digit first.")

    draw_with_mouse(page)
    assert inked_pixels(page) > 1000
    page.click("#draw-classify")
    probabilities = shown_probabilities(page)
    assert len(probabilities) == trained_model["config"]["n_classes"] == 10
    assert all(0 <= p <= 1 for p in probabilities)
    assert sum(probabilities) == pytest.approx(1, abs=1e-4)
    predicted = max(range(10), key=probabilities.__getitem__)
    expect(page.locator("#result-label")).to_have_text(str(predicted))
    expect(page.locator("#result-bars li.predicted")).to_have_attribute("data-label", str(predicted))
    assert 0 <= float(page.inner_text("#result-novelty")) <= 1
    expect(page.locator("#draw-error")).to_be_hidden()

    # The page shows what the API says about exactly this drawing.
    answer = httpx.post(f"{server}/classify", params={"model": trained_model["id"]},
                        files={"files": ("drawing.png", canvas_png(page), "image/png")})
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert probabilities == pytest.approx(result["probabilities"], abs=1e-9)
    assert result["label"] == predicted

    page.click("#draw-analogies")
    page.wait_for_function(
        "() => { const img = document.querySelector('#analogies-img'); return img.complete && img.naturalWidth > 0; }")
    shown_size = page.eval_on_selector("#analogies-img", "img => [img.naturalWidth, img.naturalHeight]")
    answer = httpx.post(f"{server}/analogies", params={"model": trained_model["id"]},
                        files={"file": ("drawing.png", canvas_png(page), "image/png")})
    assert answer.status_code == 200, answer.text
    assert list(Image.open(io.BytesIO(answer.content)).size) == shown_size

    page.click("#draw-clear")
    assert inked_pixels(page) == 0
    expect(page.locator("#result-body")).to_be_hidden()
    expect(page.locator("#analogies")).to_be_hidden()
