"""What a person does on the page, for the browser tests: draw on the canvas, read the bars."""

import base64
import time

# A "7" as strokes of (x, y) fractions of the drawing canvas.
SEVEN = [[(0.25, 0.22), (0.75, 0.22), (0.45, 0.82)]]


def canvas_points(page, stroke: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Viewport coordinates of a stroke on the drawing canvas (scrolled into view first)."""
    canvas = page.locator("#draw-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    return [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]


def draw_with_mouse(page, strokes=SEVEN) -> None:
    for stroke in strokes:
        points = canvas_points(page, stroke)
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=12)
        page.mouse.up()


def draw_with_finger(page, strokes=SEVEN) -> None:
    """Real touch events (touchstart/move/end) through the DevTools protocol, 60 moves a second.

    The finger rests a moment before it lifts: lifted while moving, it would start a fling, and
    Chromium spends the next tap on stopping that fling instead of clicking.
    """
    session = page.context.new_cdp_session(page)
    clock = time.time() - 5  # the strokes' own time line ends before any later real tap begins

    def touch(kind: str, point=None, after: float = 1 / 60) -> None:
        nonlocal clock
        clock += after
        points = [] if point is None else [{"x": point[0], "y": point[1]}]
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points, "timestamp": clock})

    for stroke in strokes:
        points = canvas_points(page, stroke)
        touch("touchStart", points[0])
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for step in range(1, 13):
                touch("touchMove", (x0 + (x1 - x0) * step / 12, y0 + (y1 - y0) * step / 12))
        touch("touchMove", points[-1], after=0.3)
        touch("touchEnd")
    session.detach()


def inked_pixels(page) -> int:
    """How many pixels of the drawing canvas are bright (the pad draws white on black)."""
    return page.evaluate(
        """() => {
          const canvas = document.querySelector('#draw-canvas');
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let count = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i] > 127) count += 1;
          return count;
        }"""
    )


def canvas_png(page) -> bytes:
    """The drawing as the PNG bytes the page sends."""
    data_url = page.evaluate("document.querySelector('#draw-canvas').toDataURL('image/png')")
    return base64.b64decode(data_url.split(",", 1)[1])


def shown_probabilities(page) -> list[float]:
    """The probability per class the page shows, read from its bars (one <li> per class)."""
    page.wait_for_selector("#result-body:not([hidden])")
    return [float(value) for value in page.locator("#result-bars li").evaluate_all(
        "items => items.map(item => item.dataset.probability)")]


def as_the_page_writes(page, value: float, digits: int) -> str:
    """`value` formatted as the page's toFixed(digits) does: it rounds a half up, Python's format
    rounds it to even (42.5 is "43" there and "42" here)."""
    return page.evaluate("([value, digits]) => value.toFixed(digits)", [value, digits])
