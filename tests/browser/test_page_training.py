"""Train form and jobs: a job started from the form is followed live, survives a reload, ends."""

import httpx
import pytest
from playwright.sync_api import expect

from browser_actions import as_the_page_writes

pytestmark = pytest.mark.browser

TRAINING_MS = 180_000


def chart_points(page, series: str) -> list[tuple[float, float]]:
    points = page.locator(f'#job-chart polyline[data-series="{series}"]').get_attribute("points")
    return [tuple(map(float, pair.split(","))) for pair in points.split()]


def test_a_job_started_from_the_form_is_charted_live_and_ends_succeeded(page, server):
    page.select_option("#train-dataset", "digits5k")
    page.fill("#train-labels", "10")
    page.fill("#train-epochs", "3")
    page.select_option("#train-size", "small")
    page.fill("#train-seed", "7")
    page.fill("#train-name", "from the form")
    page.click("#train-submit")

    page.wait_for_function("/^#job=[0-9a-f]{32}$/.test(location.hash)")
    job_id = page.evaluate("location.hash.slice(5)")
    expect(page.locator("#job-title")).to_have_text("from the form")
    job = httpx.get(f"{server}/jobs/{job_id}").json()
    assert (job["dataset"], job["params"]["epochs"], job["params"]["seed"]) == ("digits5k", 3, 7)
    assert (job["params"]["hidden"], job["params"]["z_dim"], job["params"]["a_dim"]) == ([64], 16, 16)
    assert job["params"]["skip"] is True  # the form's default, as the API's

    # The job was queued with no history, so a point on the chart arrived through the event stream.
    page.wait_for_function("document.querySelectorAll('#job-chart .series.elbo circle').length >= 1", timeout=TRAINING_MS)
    page.reload()  # the hash brings the job back and its stream replays the epochs so far
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_MS)

    job = httpx.get(f"{server}/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    history = job["history"]
    assert [point["epoch"] for point in history] == [1, 2, 3]
    for series in ("elbo", "labelled_accuracy", "test_accuracy"):
        points = chart_points(page, series)
        assert len(points) == 3, series
        assert [x for x, _ in points] == sorted(x for x, _ in points)
    # Higher ELBO is drawn higher (smaller y), epoch by epoch.
    elbo_y = [y for _, y in chart_points(page, "elbo")]
    for (a, ya), (b, yb) in zip(zip(history, elbo_y), zip(history[1:], elbo_y[1:])):
        assert (a["elbo"] < b["elbo"]) == (ya > yb)
    label = page.locator("#job-chart").get_attribute("aria-label")
    assert as_the_page_writes(page, history[-1]["elbo"], 2) in label
    assert f"{as_the_page_writes(page, history[-1]['labelled_accuracy'] * 100, 1)}%" in label

    assert page.eval_on_selector("#job-progress", "bar => [bar.value, bar.max]") == [3, 3]
    expect(page.locator("#job-progress-text")).to_contain_text("Finished 3 epochs")
    expect(page.locator("#job-cancel")).to_be_disabled()
    expect(page.locator("#job-use-model")).to_be_visible()
    expect(page.locator(f'.job-item[data-job-id="{job_id}"] .status')).to_have_text("succeeded")
    # The finished job's model is picked for samples and drawing.
    expect(page.locator("#model-select")).to_have_value(job["model_id"])


def test_invalid_settings_are_named_in_words_and_start_no_job(page, server):
    jobs_before = len(httpx.get(f"{server}/jobs").json()["jobs"])
    page.fill("#train-labels", "0")
    page.fill("#train-epochs", "5000")
    page.click("#train-submit")

    error = page.locator("#train-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("The job was not started.")
    expect(error).to_contain_text("Labels per class: Input should be greater than or equal to 1")
    expect(error).to_contain_text("Epochs: Input should be less than or equal to 2000")
    expect(page.locator("#train-labels")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#train-epochs")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#train-seed")).not_to_have_attribute("aria-invalid", "true")
    assert len(httpx.get(f"{server}/jobs").json()["jobs"]) == jobs_before


def test_a_remembered_job_that_is_gone_is_reported_in_words(open_page, server):
    missing = "0" * 32
    page = open_page(server)
    page.goto(f"/#job={missing}")
    error = page.locator("#job-error")
    expect(error).to_contain_text(f"Could not show job {missing}:")
    assert httpx.get(f"{server}/jobs/{missing}").json()["detail"] in error.inner_text()
    expect(page.locator("#job-body")).to_be_hidden()


def test_the_recipe_select_fills_the_form_and_the_job_gets_the_preset(page, server):
    presets = httpx.get(f"{server}/presets").json()["presets"]
    quick, mnist = presets[0], presets[1]
    expect(page.locator("#train-preset option")).to_have_count(len(presets))
    expect(page.locator("#train-preset-expected")).to_contain_text(quick["expected"])
    page.select_option("#train-preset", mnist["name"])
    expect(page.locator("#train-preset-expected")).to_contain_text(mnist["expected"])
    expect(page.locator("#train-epochs")).to_have_value(str(mnist["resolved"]["epochs"]))
    expect(page.locator("#train-lr")).to_have_value(str(mnist["resolved"]["learning_rate"]))
    page.select_option("#train-preset", quick["name"])
    page.select_option("#train-dataset", "digits5k")
    page.click("#train-submit")

    page.wait_for_function("/^#job=[0-9a-f]{32}$/.test(location.hash)")
    job_id = page.evaluate("location.hash.slice(5)")
    job = httpx.get(f"{server}/jobs/{job_id}").json()
    httpx.post(f"{server}/jobs/{job_id}/cancel")  # the recipe's full training is not what this test is about
    assert job["params"] == {"dataset": "digits5k", "name": None, "preset": "quick", **quick["resolved"]}
