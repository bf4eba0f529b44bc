"""Takes docs/screenshot.png: the page with a freshly trained model, a drawn digit and its answer.

    .venv/bin/python tests/browser/take_screenshot.py [OUTPUT.png] [--epochs N]

Starts its own server in a temporary directory, trains a small model on digits5k (a minute or
so on a laptop CPU), then drives Debian's Chromium like a person would.
"""

import argparse
import io
import tempfile
from pathlib import Path

import httpx
from browser_actions import draw_with_mouse
from browser_server import REPO_ROOT, SMALL_PRESET, launch_chromium, running_server, wait_for_job
from PIL import Image
from playwright.sync_api import sync_playwright

VIEWPORT = {"width": 1280, "height": 900}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=REPO_ROOT / "docs" / "screenshot.png")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory, running_server(Path(directory)) as url:
        body = {"dataset": "digits5k", "labels_per_class": 10, "epochs": args.epochs, "name": "digits5k, small, 10 labels", **SMALL_PRESET}
        job = httpx.post(f"{url}/train", json=body, timeout=30).json()
        job = wait_for_job(url, job["id"])
        if job["status"] != "succeeded":
            raise SystemExit(f"training did not succeed: {job}")

        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/#job={job['id']}")
            page.wait_for_selector("#job-status[data-status=succeeded]")
            page.select_option("#sample-label", "2")
            page.wait_for_function("() => { const img = document.querySelector('#sample-grid'); return img.complete && img.naturalWidth > 0; }")
            draw_with_mouse(page)
            page.click("#draw-classify")
            page.wait_for_selector("#result-body:not([hidden])")
            page.click("#draw-analogies")
            page.wait_for_function("() => { const img = document.querySelector('#analogies-img'); return img.complete && img.naturalWidth > 0; }")
            page.evaluate("window.scrollTo(0, 0)")
            png = page.screenshot(full_page=True)
            browser.close()

    # A 256-colour palette keeps the file small; the page has few colours besides the digits.
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    image.save(args.output, optimize=True)
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KiB, {image.width}×{image.height})")


if __name__ == "__main__":
    main()
