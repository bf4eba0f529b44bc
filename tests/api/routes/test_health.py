"""GET /healthz, /readyz, /metrics, the web page and the OpenAPI document."""

import shutil

from prometheus_client.parser import text_string_to_metric_families

from app.api.routes.pages import STATIC_DIR
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore


def samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_embedded_mode(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "not configured", "artifacts": "ok"}


def test_readyz_reports_an_unusable_artifact_store(make_settings, start_client):
    settings = make_settings()
    client = start_client(settings)
    shutil.rmtree(settings.artifact_dir)
    settings.artifact_dir.write_text("not a directory")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["artifacts"].startswith("error:")


def test_readyz_reports_an_unreachable_broker(make_settings, start_client, unused_port):
    client = start_client(make_settings(broker_url=f"redis://127.0.0.1:{unused_port}/0"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error:")
    assert response.json()["database"] == "ok"


def test_readyz_with_a_live_broker(make_settings, start_client, redis_url):
    client = start_client(make_settings(broker_url=redis_url))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "artifacts": "ok"}


def test_metrics_label_requests_by_route_template_and_count_jobs(client):
    client.post("/train", json={"epochs": 1})
    client.post("/train", json={"epochs": 1})
    unknown = "0" * 32
    assert client.get(f"/jobs/{unknown}").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values[("adgm_jobs", (("state", "queued"),))] == 2
    assert values[("adgm_jobs", (("state", "running"),))] == 0
    assert values[("adgm_training_examples_per_second", ())] == 0
    count = ("adgm_request_seconds_count", (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "404")))
    assert values[count] == 1
    assert values[("adgm_request_seconds_count", (("method", "POST"), ("route", "/train"), ("status", "202")))] == 2
    assert not any(unknown in str(key) for key in values)  # raw paths never become labels


def test_index_page_and_static_files(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.content == (STATIC_DIR / "index.html").read_bytes()
    assert client.get("/static/index.html").content == response.content


def test_openapi_documents_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/train", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/events",
                 "/datasets", "/models", "/models/{model_id}", "/sample", "/classify", "/analogies",
                 "/healthz", "/readyz", "/metrics"):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_without_an_api_key_the_schema_requires_no_authentication(client):
    schema = client.get("/openapi.json").json()
    operations = [op for operations in schema["paths"].values() for op in operations.values()]
    assert not any("security" in op or "401" in op["responses"] for op in operations)
    assert "securitySchemes" not in schema.get("components", {})


def test_method_not_allowed_names_every_method_of_the_path(client):
    response = client.put(f"/models/{'0' * 32}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.json()["detail"] == "Method not allowed; use DELETE, GET."


def test_metrics_sum_the_last_reported_throughput_of_each_running_job(make_settings, start_client):
    settings = make_settings()
    client = start_client(settings)  # creates the tables
    store = JobStore.from_settings(make_sessionmaker(make_engine(settings.database_url)), settings)
    report = dict(epochs=3, elbo=-100.0, labelled_accuracy=0.5, test_accuracy=None, eta_seconds=1.0, learning_rate=1e-3)
    first, second, finished = (store.create({}, "digits5k", None) for _ in range(3))
    for job, token, rates in ((first, "a", (100.0, 300.0)), (second, "b", (50.0,)), (finished, "c", (1000.0,))):
        assert store.claim(job.id, token)
        for epoch, rate in enumerate(rates, start=1):
            assert store.record_progress(job.id, token, dict(report, epoch=epoch, examples_per_second=rate))
    assert store.fail(finished.id, "c", "stopped for the test")
    values = samples(client.get("/metrics").text)
    assert values[("adgm_jobs", (("state", "running"),))] == 2
    assert values[("adgm_jobs", (("state", "failed"),))] == 1
    assert values[("adgm_training_examples_per_second", ())] == 350.0  # 300 (newest of first) + 50
