"""The whole service as real processes: distributed (redis-server + Celery worker + uvicorn) and
embedded (uvicorn alone), trained on real MNIST; and an API restart that loses nothing."""

import io
import time

import httpx
import pytest
from PIL import Image

from adgm_core.data import load_mnist
from image_files import encode
from job_events import follow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

# Real MNIST, a small model, one epoch: this proves the flow, not the accuracy.
MNIST_JOB = {"dataset": "mnist", "labels_per_class": 10, "epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4,
             "batch_size": 500, "learning_rate": 1e-3, "name": "mnist flow"}
LONG_JOB = {**MNIST_JOB, "epochs": 50, "name": "to be cancelled"}


@pytest.fixture(scope="module")
def mnist_test_digits(mnist_dir):
    _train, test = load_mnist(mnist_dir)
    return test.images[:3], test.labels[:3]


def wait_until_running(client: httpx.Client, job: dict, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.get(job["url"]).json()["status"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)


def train_sample_classify(client: httpx.Client, digits) -> dict:
    """POST /train on MNIST → events → succeeded → /sample PNG → /classify of real test digits."""
    response = client.post("/train", json=MNIST_JOB)
    assert response.status_code == 202, response.text
    job = response.json()
    events = follow(client, job)
    progress = [data for event, _, data in events if event == "progress"]
    assert [p["epoch"] for p in progress] == [1]
    assert progress[0]["examples_per_second"] > 0 and 0 <= progress[0]["test_accuracy"] <= 1
    final = events[-1][2]
    assert final["status"] == "succeeded", final["error"]
    assert client.get(job["url"]).json() == final

    sample = client.get("/sample", params={"label": 7, "n": 10, "seed": 1})
    assert sample.status_code == 200 and sample.headers["x-model-id"] == final["model_id"]
    image = Image.open(io.BytesIO(sample.content))
    assert image.format == "PNG" and image.size == (2 + 10 * 30, 2 + 30)

    images, labels = digits
    files = [("files", (f"mnist{int(label)}.png", encode(image), "image/png")) for image, label in zip(images, labels)]
    answer = client.post("/classify", files=files, params={"novelty": "true"})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert answer.json()["model_id"] == final["model_id"] and len(results) == 3
    for result in results:
        assert sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert len(result["probabilities"]) == 10 and 0 <= result["novelty"] <= 1
    return final


def cancel_running(client: httpx.Client) -> None:
    job = client.post("/train", json=LONG_JOB).json()
    wait_until_running(client, job)
    assert client.post(f"{job['url']}/cancel").status_code == 202
    final = follow(client, job)[-1][2]
    assert final["status"] == "cancelled" and final["model_id"] is None


def test_distributed_mode(redis_url, postgres_url, service_env, start_api, start_celery_worker,
                          mnist_test_digits):
    env = {**service_env, "ADGM_BROKER_URL": redis_url, "ADGM_DATABASE_URL": postgres_url}  # as in docker-compose.yml
    worker = start_celery_worker(env)
    url, api = start_api(env)
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/readyz").json() == {"database": "ok", "broker": "ok", "artifacts": "ok"}
        final = train_sample_classify(client, mnist_test_digits)
        cancel_running(client)
    log = worker.log.read_text()
    assert "Task adgm.train[" in log, worker.tail()
    assert f"job {final['id']}: succeeded" in log  # trained by the Celery worker, not by the API
    assert "embedded worker" not in api.log.read_text()  # with a broker the API trains nothing itself


def test_embedded_mode(service_env, start_api, mnist_test_digits):
    url, api = start_api(service_env)
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/readyz").json() == {"database": "ok", "broker": "not configured", "artifacts": "ok"}
        train_sample_classify(client, mnist_test_digits)
        cancel_running(client)


def test_restart_keeps_jobs_and_models_and_resumes_a_running_job(service_env, start_api):
    env = {**service_env, "ADGM_CHECKPOINT_EVERY": "1"}
    tiny = {"dataset": "digits5k", "hidden": [32], "z_dim": 4, "a_dim": 4, "learning_rate": 1e-3}
    url, api = start_api(env)
    with httpx.Client(base_url=url, timeout=60) as client:
        done = follow(client, client.post("/train", json={**tiny, "epochs": 1}).json())[-1][2]
        assert done["status"] == "succeeded"
        before = client.get("/sample", params={"label": 4, "seed": 5}).content
        running = client.post("/train", json={**tiny, "epochs": 8}).json()
        seen = []
        with client.stream("GET", running["events_url"]) as stream:
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    seen.append(line[len("id: "):])
                if len(seen) == 2:
                    break
        jobs_before = client.get("/jobs").json()["jobs"]
        models_before = client.get("/models").json()
    api.stop()  # SIGTERM: the embedded worker hands its job back and the API shuts down cleanly
    log = api.log.read_text()
    assert f"job {running['id']}: released" in log and "Application shutdown complete." in log, api.tail()

    url, api = start_api(env, name="api-restarted")
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/models").json() == models_before
        assert client.get("/sample", params={"label": 4, "seed": 5}).content == before
        after = {job["id"]: job for job in client.get("/jobs").json()["jobs"]}
        assert set(after) == {job["id"] for job in jobs_before}
        assert after[done["id"]] == done
        events = follow(client, running)
    final = events[-1][2]
    assert final["status"] == "succeeded"
    assert [p["epoch"] for p in final["history"]] == list(range(1, 9))
    # The epochs reported before the restart kept their rows: the job resumed, it did not start over.
    assert [event_id for _, event_id, _ in events[:2]] == seen
