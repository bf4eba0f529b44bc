"""POST /train, GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel, GET /jobs/{id}/events."""

import json
import threading
import time

import pytest

from adgm_core.presets import PRESETS

from store.ids import new_id

TINY = {"dataset": "digits5k", "epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4}


def parse_events(lines) -> list[dict]:
    """Server-Sent Events → [{"event", "data" (decoded JSON), "id"}]."""
    events, current = [], {}
    for line in lines:
        if not line:
            if current:
                events.append(current)
            current = {}
        elif line.startswith("event: "):
            current["event"] = line[len("event: "):]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[len("data: "):])
        elif line.startswith("id: "):
            current["id"] = line[len("id: "):]
    return events


def read_events(client, job_id, headers=None) -> list[dict]:
    with client.stream("GET", f"/jobs/{job_id}/events", headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_events(response.iter_lines())


def test_train_queues_a_job_with_every_default(client):
    response = client.post("/train", json={})
    assert response.status_code == 202
    job = response.json()
    assert len(job["id"]) == 32 and int(job["id"], 16) >= 0
    assert job["status"] == "queued"
    assert job["url"] == f"/jobs/{job['id']}" == response.headers["location"]
    assert job["events_url"] == f"/jobs/{job['id']}/events"
    # an empty body is the `quick` preset, every parameter of which the job records
    assert job["params"] == {"dataset": "digits5k", "name": None, "preset": "quick", **PRESETS["quick"].resolve()}
    assert set(job["params"]) >= {"labels_per_class", "epochs", "hidden", "z_dim", "a_dim", "skip",
                                  "learning_rate", "batch_size", "mc_samples", "seed"}
    assert job["progress"] is None and job["history"] == [] and job["model_id"] is None and job["error"] is None
    read = client.get(job["url"]).json()
    assert read == {key: value for key, value in job.items() if key not in ("url", "events_url")}


def test_whole_numbers_written_as_floats_are_integers(client):
    response = client.post("/train", json={**TINY, "epochs": 3.0, "hidden": [32.0]})
    assert response.status_code == 202
    assert response.json()["params"]["epochs"] == 3 and response.json()["params"]["hidden"] == [32]


def test_jobs_are_listed_newest_first(client):
    ids = [client.post("/train", json={**TINY, "name": f"job {index}"}).json()["id"] for index in range(3)]
    listed = client.get("/jobs").json()["jobs"]
    assert [job["id"] for job in listed] == ids[::-1]
    assert [job["name"] for job in listed] == ["job 2", "job 1", "job 0"]
    assert [job["id"] for job in client.get("/jobs?limit=2").json()["jobs"]] == ids[:0:-1]
    assert client.get("/jobs?limit=0").status_code == 422


RECIPE_SWITCHES = {
    "activation": "elu", "batch_norm": False, "labelled_batch_size": 50, "lr_schedule": "cosine", "lr_decay": 0.5,
    "lr_decay_every": 3, "lr_warmup_steps": 20, "warmup_steps": 100, "grad_clip": 2.0, "grad_clip_value": 1.0,
    "mc_average_softmax": False, "weight_prior": True, "ema_decay": 0.99, "alpha": 7.5, "eval_samples": 3,
    "bf16": True, "classifier_shift": 2, "classifier_samples": 5,
    "deterministic_a": True,
}


def test_every_training_parameter_of_the_core_can_be_set_over_http(client, fake_cpu):
    from adgm_core.presets import PARAMETERS
    from app.schemas import JobCreate

    fake_cpu("avx2", "avx512_bf16")  # bf16 is refused on a CPU without it (test_bf16_needs_a_native_bf16_cpu)
    assert set(PARAMETERS) <= set(JobCreate.model_fields)
    job = client.post("/train", json={**TINY, **RECIPE_SWITCHES}).json()
    assert {name: job["params"][name] for name in RECIPE_SWITCHES} == RECIPE_SWITCHES
    given = {key: value for key, value in {**TINY, **RECIPE_SWITCHES}.items() if key != "dataset"}
    assert job["params"] == {"dataset": "digits5k", "name": None, "preset": "quick",
                             **PRESETS["quick"].resolve(**given)}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("activation", "swish"), ("lr_schedule", "linear"), ("lr_decay", 0), ("lr_decay", 1.5),
        ("ema_decay", 1.0), ("ema_decay", 0), ("alpha", 0), ("eval_samples", 0), ("eval_samples", 201),
        ("grad_clip_value", -1.0), ("lr_warmup_steps", -1), ("batch_norm", "yes"), ("labelled_batch_size", 0),
        ("classifier_shift", -1), ("classifier_shift", 9), ("classifier_samples", 0), ("classifier_samples", 65),
        ("labels_per_class", 0), ("labels_per_class", 1001), ("epochs", 0), ("epochs", 2001),
        ("hidden", []), ("hidden", [4]), ("hidden", [64, 64, 64, 64, 64]), ("hidden", [4096]),
        ("z_dim", 0), ("a_dim", 513), ("learning_rate", 0), ("learning_rate", 2.0), ("batch_size", 4),
        ("batch_size", 5000), ("mc_samples", 65), ("seed", -1), ("seed", 2**31), ("name", "x" * 101),
        ("dataset", "../../etc/passwd"), ("dataset", "MNIST"), ("skip", "sometimes"), ("epochs", "many"),
        ("surprise", 1), ("epochs", True), ("epochs", "10"), ("seed", 1.5), ("skip", 1), ("learning_rate", "0.1"),
    ],
)
def test_train_rejects_an_out_of_bounds_field(client, field, value):
    response = client.post("/train", json={**TINY, field: value})
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert client.get("/jobs").json()["jobs"] == []


def test_bf16_needs_a_native_bf16_cpu(make_settings, start_client, fake_cpu):
    client = start_client(make_settings(device="cpu"))
    fake_cpu("sse4_2", "avx2", "fma")  # an AVX2 CPU: bf16 autocast would be emulated, several times slower
    response = client.post("/train", json={**TINY, "bf16": True})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "Fake CPU" in detail and "no native bfloat16" in detail and "avx512_bf16" in detail
    assert '"bf16": false' in detail and "GPU" in detail
    assert client.get("/jobs").json()["jobs"] == []
    assert client.post("/train", json={**TINY, "bf16": False}).status_code == 202
    fake_cpu("avx2", "amx_bf16")
    assert client.post("/train", json={**TINY, "bf16": True}).json()["params"]["bf16"] is True


def test_train_rejects_more_labels_than_the_data_set_has(client):
    response = client.post("/train", json={**TINY, "labels_per_class": 1000})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "labelled examples" in detail and "1000 requested" in detail
    assert client.get("/jobs").json()["jobs"] == []


def test_train_rejects_an_unknown_data_set_id(client):
    unknown = new_id()
    response = client.post("/train", json={**TINY, "dataset": unknown})
    assert response.status_code == 422
    assert unknown in response.json()["detail"] and "Unknown data set" in response.json()["detail"]


def test_train_on_mnist_needs_the_mnist_directory(client):
    response = client.post("/train", json={**TINY, "dataset": "mnist"})
    assert response.status_code == 422
    assert "ADGM_MNIST_DIR" in response.json()["detail"]


def test_train_on_mnist_when_configured(make_settings, start_client, mnist_dir):
    client = start_client(make_settings(mnist_dir=mnist_dir))
    response = client.post("/train", json={**TINY, "dataset": "mnist", "labels_per_class": 100})
    assert response.status_code == 202
    assert response.json()["dataset"] == "mnist"


def test_train_refuses_to_flood_the_queue(make_settings, start_client):
    client = start_client(make_settings(max_queued_jobs=2))
    assert [client.post("/train", json=TINY).status_code for _ in range(2)] == [202, 202]
    response = client.post("/train", json=TINY)
    assert response.status_code == 429 and "2 jobs are already queued" in response.json()["detail"]
    assert len(client.get("/jobs").json()["jobs"]) == 2
    first = client.get("/jobs").json()["jobs"][0]["id"]
    assert client.post(f"/jobs/{first}/cancel").status_code == 202
    assert client.post("/train", json=TINY).status_code == 202


def test_train_rejects_malformed_and_oversized_bodies(client):
    response = client.post("/train", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    response = client.post("/train", json={**TINY, "name": "x" * 100_000})
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]
    assert client.get("/jobs").json()["jobs"] == []


def test_unknown_and_malformed_job_ids(client):
    unknown = new_id()
    for method, path in (("get", f"/jobs/{unknown}"), ("post", f"/jobs/{unknown}/cancel"),
                         ("get", f"/jobs/{unknown}/events")):
        response = getattr(client, method)(path)
        assert response.status_code == 404
        assert response.json()["detail"] == f"Job {unknown} does not exist."
    for bad in ("123", unknown.upper(), "..%2F..%2Fetc%2Fpasswd", "x" * 32, unknown + "0"):
        assert client.get(f"/jobs/{bad}").status_code in (404, 422)


def test_cancel_a_queued_job_then_again(client):
    job = client.post("/train", json=TINY).json()
    response = client.post(f"/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    again = client.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
    assert client.get(job["url"]).json()["status"] == "cancelled"


def test_cancel_a_running_job_sets_the_flag_its_worker_reads(client):
    job = client.post("/train", json=TINY).json()
    store = client.app.state.runtime.store
    assert store.claim(job["id"], "worker-token")
    response = client.post(f"/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running"  # until the worker stops at its next batch
    beat = store.heartbeat(job["id"], "worker-token")
    assert beat.held and beat.cancel_requested
    assert store.cancelled(job["id"], "worker-token")
    assert client.get(job["url"]).json()["status"] == "cancelled"
    assert client.post(f"/jobs/{job['id']}/cancel").status_code == 409


def test_cancelling_a_succeeded_job_is_a_conflict(model_client, trained_state):
    response = model_client.post(f"/jobs/{trained_state.job_id}/cancel")
    assert response.status_code == 409
    assert "already succeeded" in response.json()["detail"]


def test_events_replay_the_history_then_end(model_client, trained_state):
    job = model_client.get(f"/jobs/{trained_state.job_id}").json()
    assert job["status"] == "succeeded" and len(job["history"]) == 2
    events = read_events(model_client, trained_state.job_id)
    assert [event["event"] for event in events] == ["progress", "progress", "end"]
    assert [event["data"] for event in events[:2]] == job["history"]
    assert [event["data"]["epoch"] for event in events[:2]] == [1, 2]
    assert events[0]["data"]["epochs"] == 2 and events[0]["data"]["examples_per_second"] > 0
    assert events[-1]["data"] == job
    # A reconnecting client sends the last id it saw and gets only what came after.
    resumed = read_events(model_client, trained_state.job_id, headers={"Last-Event-ID": events[0]["id"]})
    assert [event["event"] for event in resumed] == ["progress", "end"]
    assert resumed[0]["data"]["epoch"] == 2


def test_events_follow_a_live_job_until_it_ends(client):
    job = client.post("/train", json=TINY).json()
    store = client.app.state.runtime.store
    assert store.claim(job["id"], "worker-token")
    report = {"epochs": 2, "elbo": -200.0, "labelled_accuracy": 0.5, "test_accuracy": None,
              "examples_per_second": 1000.0, "eta_seconds": 1.0, "learning_rate": 1e-3}

    def work():  # a worker reporting two epochs, then cancelled
        time.sleep(0.3)
        store.record_progress(job["id"], "worker-token", {**report, "epoch": 1})
        time.sleep(0.3)
        store.record_progress(job["id"], "worker-token", {**report, "epoch": 2})
        store.cancelled(job["id"], "worker-token")

    worker = threading.Thread(target=work)
    worker.start()
    events = read_events(client, job["id"])
    worker.join()
    assert [(event["event"], event["data"].get("epoch")) for event in events] == [
        ("progress", 1), ("progress", 2), ("end", None)
    ]
    assert events[-1]["data"]["status"] == "cancelled"
    assert events[-1]["data"]["progress"]["epoch"] == 2


def test_a_job_trains_to_success_in_the_embedded_worker(make_settings, start_client):
    client = start_client(make_settings(embedded_workers=1))
    job = client.post("/train", json={**TINY, "epochs": 2}).json()
    events = read_events(client, job["id"])
    assert [event["event"] for event in events] == ["progress", "progress", "end"]
    final = events[-1]["data"]
    assert final["status"] == "succeeded", final["error"]
    assert final["model_id"] is not None and final["started_at"] <= final["finished_at"]
    model = client.get(f"/models/{final['model_id']}").json()
    assert model["job_id"] == job["id"] and model["is_default"]
    assert client.get("/sample", params={"label": 1}).status_code == 200


def test_a_running_job_is_cancelled_in_the_embedded_worker(make_settings, start_client):
    client = start_client(make_settings(embedded_workers=1))
    job = client.post("/train", json={**TINY, "epochs": 500}).json()
    with client.stream("GET", job["events_url"]) as response:
        lines = response.iter_lines()
        first = parse_events(iter(lambda: next(lines), ""))  # up to the first blank line: one event
        assert first == [] or first[0]["event"] == "progress"
        assert client.post(f"/jobs/{job['id']}/cancel").status_code == 202
        events = parse_events(lines)
    assert events[-1]["event"] == "end"
    final = events[-1]["data"]
    assert final["status"] == "cancelled"
    assert final["model_id"] is None
    assert len(final["history"]) < 500
    assert client.get("/models").json()["models"] == []


def test_a_preset_brings_its_data_set_and_every_parameter(client):
    refused = client.post("/train", json={"preset": "mnist-cpu"})  # MNIST is not on this test server
    assert refused.status_code == 422 and "MNIST" in refused.json()["detail"]
    job = client.post("/train", json={"preset": "mnist-cpu", "dataset": "digits5k", "epochs": 3}).json()
    assert job["params"] == {"dataset": "digits5k", "name": None, "preset": "mnist-cpu",
                             **PRESETS["mnist-cpu"].resolve(epochs=3)}
    assert job["params"]["epochs"] == 3 and job["params"]["batch_norm"] == PRESETS["mnist-cpu"].params["batch_norm"]
