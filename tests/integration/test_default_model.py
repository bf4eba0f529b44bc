"""What a new user gets: `POST /train` with an empty body (the `quick` preset on digits5k), then
`GET /sample?label=k` for every k. The served PNGs are cut into their digits and each digit is judged
by an independent CNN trained on all 60,000 labelled MNIST images (bench/judge.py): the model must
draw the digit it is asked for, for every label, classify digits5k's test images well, and agree with
itself (its card's self-consistency). This is the suite's one training of the `quick` preset on digits5k.
The old defaults (10 epochs at lr 3e-4) gave 75.3 % test accuracy and 22 % fidelity."""

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from adgm_core.data import load_mnist
from job_events import follow

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

SIDE, PADDING, COLUMNS = 28, 2, 10
# The quick preset measured 89.5-92.9 % test accuracy and 95.8-97.6 % fidelity over three label draws,
# worst label 86 % (docs/results.md); the old defaults drew the asked digit 22 % of the time.
ACCURACY, FIDELITY, WORST_LABEL = 0.87, 0.90, 0.6


def digits_of_grid(png: bytes, n: int) -> np.ndarray:
    """The n 28×28 digits of a /sample grid (10 per row, 2-pixel gaps)."""
    grid = np.asarray(Image.open(io.BytesIO(png)))
    cells = []
    for index in range(n):
        top, left = PADDING + (index // COLUMNS) * (SIDE + PADDING), PADDING + (index % COLUMNS) * (SIDE + PADDING)
        cells.append(grid[top:top + SIDE, left:left + SIDE])
    return np.stack(cells)


def test_the_default_model_draws_every_asked_digit(service_env, start_api, judge):
    url, _api = start_api(service_env)  # one torch thread, as the figures in docs/results.md
    with httpx.Client(base_url=url, timeout=60) as client:
        job = client.post("/train", json={}).json()
        assert job["params"]["preset"] == "quick" and job["dataset"] == "digits5k"
        final = follow(client, job, timeout=900)[-1][2]
        assert final["status"] == "succeeded", final["error"]
        accuracy = final["progress"]["test_accuracy"]
        card = client.get(f"/models/{final['model_id']}").json()

        shares = []
        for label in range(10):
            response = client.get("/sample", params={"label": label, "n": 100, "seed": 0})
            assert response.status_code == 200 and response.headers["x-model-id"] == final["model_id"]
            digits = digits_of_grid(response.content, 100)
            assert digits.dtype == np.uint8 and digits.max() > 0
            shares.append(float((judge.predict(digits) == label).mean()))
    consistency = card["metrics"]["self_consistency"]
    print(f"default model: test accuracy {accuracy:.4f}, judged share of the asked digit per label "
          f"{[round(share, 2) for share in shares]}, mean {np.mean(shares):.3f}, self-consistency {consistency:.3f}")
    assert accuracy >= ACCURACY
    assert np.mean(shares) >= FIDELITY
    assert min(shares) >= WORST_LABEL, f"label {int(np.argmin(shares))} is drawn as asked only {min(shares):.0%} of the time"
    assert consistency >= FIDELITY  # the model agrees with itself at least as often as the judge does


def test_the_judge_is_a_sound_judge(judge, mnist_dir):
    test = load_mnist(mnist_dir)[1]
    assert (judge.predict(test.images) == test.labels).mean() > 0.985


def test_the_grid_is_cut_where_the_digits_are():
    digits = np.arange(7 * SIDE * SIDE, dtype=np.int64).reshape(7, SIDE, SIDE) % 251
    grid = np.zeros((PADDING + (SIDE + PADDING), PADDING + 7 * (SIDE + PADDING)), np.uint8)
    for index, digit in enumerate(digits):
        left = PADDING + index * (SIDE + PADDING)
        grid[PADDING:PADDING + SIDE, left:left + SIDE] = digit
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    assert np.array_equal(digits_of_grid(buffer.getvalue(), 7), digits)
