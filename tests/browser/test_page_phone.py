"""A phone-sized screen: a digit drawn with a finger is classified, and nothing overflows sideways."""

import pytest
from browser_actions import draw_with_finger, inked_pixels, shown_probabilities
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def overflow(page) -> list[str]:
    """What sticks out past the right edge of the screen (empty when nothing does)."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const wide = document.documentElement.scrollWidth > width ? ['the document'] : [];
          for (const node of document.querySelectorAll('main *')) {
            const box = node.getBoundingClientRect();
            if (box.width && node.checkVisibility() && box.right > width + 0.5) wide.push(node.id || node.className || node.tagName);
          }
          return wide;
        }"""
    )


def test_phone_draws_with_a_finger_classifies_and_fits_the_screen(trained_model, open_page, server):
    page = open_page(server, **PHONE)
    page.goto("/")
    page.wait_for_selector(f'#model-select option[value="{trained_model["id"]}"]', state="attached")
    page.select_option("#model-select", trained_model["id"])
    # The sample grid above the canvas has loaded, so nothing moves the canvas while the finger draws.
    page.wait_for_function(
        "() => { const img = document.querySelector('#sample-grid'); return img.complete && img.naturalWidth > 0; }")
    assert overflow(page) == []
    assert page.eval_on_selector("#draw-canvas", "canvas => getComputedStyle(canvas).touchAction") == "none"

    page.locator("#draw-canvas").scroll_into_view_if_needed()
    scroll_before = page.evaluate("window.scrollY")
    draw_with_finger(page)
    assert inked_pixels(page) > 1000
    assert page.evaluate("window.scrollY") == scroll_before  # the finger drew instead of scrolling

    page.tap("#draw-classify")
    probabilities = shown_probabilities(page)
    assert len(probabilities) == 10
    assert sum(probabilities) == pytest.approx(1, abs=1e-4)
    expect(page.locator("#result-label")).to_have_text(str(max(range(10), key=probabilities.__getitem__)))
    assert overflow(page) == []
