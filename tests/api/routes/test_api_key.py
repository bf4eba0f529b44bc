"""With ADGM_API_KEY set, every route that changes state needs `Authorization: Bearer <key>`."""

import numpy as np
import pytest

KEY = "s3cret-key"


@pytest.fixture
def keyed_client(make_settings, start_client, trained_state):
    return start_client(make_settings(trained_state, api_key=KEY))


def state_changing_routes(client) -> list[tuple[str, str]]:
    """Every documented route whose method changes state."""
    return sorted(
        (method.upper(), path)
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        for method in operations if method in ("post", "put", "patch", "delete")
    )


def concrete(path: str, trained_state) -> str:
    return (path.replace("{job_id}", trained_state.job_id).replace("{model_id}", trained_state.model_id)
            .replace("{name}", "default").replace("{dataset_id}", "d" * 32))


def test_every_state_changing_route_refuses_a_missing_or_wrong_key(keyed_client, trained_state):
    routes = state_changing_routes(keyed_client)
    label_studio = [route for route in routes if route[1].startswith("/label-studio/")]  # basic auth: test_label_studio_backend.py
    assert label_studio == [("POST", "/label-studio/predict"), ("POST", "/label-studio/setup"),
                            ("POST", "/label-studio/webhook")]
    routes = [route for route in routes if route not in label_studio]
    assert routes == [("DELETE", "/models/{model_id}"), ("POST", "/analogies"), ("POST", "/classify"),
                      ("POST", "/datasets"), ("POST", "/datasets/{dataset_id}/labels"),
                      ("POST", "/jobs/{job_id}/cancel"), ("POST", "/train"),
                      ("POST", "/v2/models/{name}/infer")]
    for method, path in routes:
        url = concrete(path, trained_state)
        missing = keyed_client.request(method, url)
        assert missing.status_code == 401, (method, path)
        answer = missing.json()  # {"detail": …}, or {"error": …} on the Open Inference Protocol's routes
        assert answer.get("detail", answer.get("error")) == "This route needs the API key: send 'Authorization: Bearer <key>'."
        assert missing.headers["www-authenticate"] == "Bearer"
        for wrong in ("Bearer nope", f"Bearer {KEY}x", f"Basic {KEY}", KEY):
            response = keyed_client.request(method, url, headers={"Authorization": wrong})
            assert response.status_code == 401, (method, path, wrong)
    # nothing happened
    assert keyed_client.get("/models").json()["default"] == trained_state.model_id
    assert len(keyed_client.get("/jobs").json()["jobs"]) == 1


def test_the_schema_declares_the_bearer_key_on_exactly_those_routes(keyed_client):
    schema = keyed_client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    secured = sorted((method.upper(), path) for path, operations in schema["paths"].items()
                     for method, operation in operations.items() if operation.get("security"))
    assert secured == state_changing_routes(keyed_client)
    for method, path in secured:
        assert "401" in schema["paths"][path][method.lower()]["responses"]


def test_the_right_key_is_accepted(keyed_client, trained_state, encode):
    auth = {"Authorization": f"Bearer {KEY}"}
    assert keyed_client.post("/train", json={"epochs": 1}, headers=auth).status_code == 202
    digit = encode(np.zeros((28, 28), np.uint8) + 255)
    response = keyed_client.post("/classify", files={"files": ("d.png", digit)}, headers=auth)
    assert response.status_code in (200, 422)  # a blank image may be refused, but not for the key
    assert keyed_client.post(f"/jobs/{trained_state.job_id}/cancel", headers=auth).status_code == 409
    assert keyed_client.delete(f"/models/{trained_state.model_id}", headers=auth).status_code == 204


def test_reads_stay_open(keyed_client, trained_state):
    for path in ("/jobs", f"/jobs/{trained_state.job_id}", "/models", f"/models/{trained_state.model_id}",
                 "/datasets", "/sample?label=1", "/healthz", "/readyz", "/metrics", "/"):
        assert keyed_client.get(path).status_code == 200, path


def test_without_a_key_everything_is_open(model_client):
    assert model_client.post("/train", json={"epochs": 1}).status_code == 202
