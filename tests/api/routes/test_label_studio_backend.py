"""The /label-studio backend's guards, against the ASGI app: basic auth, labelling configs it cannot
serve, and image fetches that stay on ADGM_LABEL_STUDIO_URL's host, within the size limit and the
time-out, with the token, each failure named in its task's result. The image host here is a
plain local HTTP server; tests/integration/test_label_studio.py runs the real Label Studio."""

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from store.scopes import Scope

CONFIG = ('<View><Image name="image" value="$image"/><Choices name="digit" toName="image">'
          + "".join(f'<Choice value="{k}"/>' for k in range(10)) + "</Choices></View>")
TOKEN = "ls-token"
KEY = "the-key"


@pytest.fixture
def image_host(test_digits, encode):
    """A local server standing in for Label Studio's file serving: /digit.png, /big.png (1 MiB),
    /slow.png (answers after 3 s), anything else 404; it records the Authorization headers."""
    digit = encode(255 - test_digits[0][0])
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            if self.path == "/slow.png":
                time.sleep(3)
            body = {"/digit.png": digit, "/slow.png": digit, "/big.png": b"\0" * 2**20}.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def backend(image_host, trained_state, make_settings, start_client):
    url, seen = image_host
    settings = make_settings(trained_state, api_key=KEY, label_studio_url=url, label_studio_api_key=TOKEN,
                             label_studio_max_image_bytes=100_000, label_studio_timeout_seconds=1)
    return start_client(settings), url, seen


def basic(password: str, user: str = "label-studio") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_health_is_open_and_posts_need_basic_auth(backend):
    client, _url, _seen = backend
    assert client.get("/label-studio/health").json() == {"status": "UP", "model_class": "AuxiliaryDeepGenerativeModel"}
    assert client.get("/label-studio/").status_code == 200
    body = {"project": "1.1700000000", "schema": CONFIG}
    for headers in ({}, basic("wrong"), {"Authorization": "Basic not-base64!"}):
        answer = client.post("/label-studio/setup", json=body, headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic"), headers
        assert "basic auth" in answer.json()["detail"] and "wrong" not in answer.text
    for headers in (basic(KEY), {"Authorization": f"Bearer {KEY}"}):  # the admin key, as password or bearer token
        answer = client.post("/label-studio/setup", json=body, headers=headers)
        assert answer.status_code == 200 and len(answer.json()["model_version"]) == 32


def test_an_infer_token_predicts_and_a_label_token_also_takes_annotations(backend):
    """Label Studio's ML backend connection (setup, predict) needs scope infer; its webhook, label."""
    client, _url, _seen = backend
    tokens = client.app.state.runtime.tokens
    infer, label = tokens.create(Scope.INFER, "ls-backend")[1], tokens.create(Scope.LABEL, "ls-webhook")[1]
    setup = {"project": 4, "schema": CONFIG}
    predict = {"tasks": [{"id": 1, "data": {"image": "/digit.png"}}], "label_config": CONFIG, "project": 4}
    event = {"action": "PROJECT_UPDATED", "project": {"id": 4}}
    for token in (infer, label):
        assert client.post("/label-studio/setup", json=setup, headers=basic(token)).status_code == 200
        answer = client.post("/label-studio/predict", json=predict, headers=basic(token))
        assert answer.status_code == 200 and answer.json()["results"][0]["result"], answer.text
    refused = client.post("/label-studio/webhook", json=event, headers=basic(infer))
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("Scope infer cannot POST /label-studio/webhook: that needs scope label or more "
                                        "(token 'ls-backend' has infer).")
    assert client.post("/label-studio/webhook", json=event, headers=basic(label)).json()["ignored"] is True
    assert client.post("/label-studio/webhook", json=event, headers={"Authorization": f"Bearer {label}"}).status_code == 200
    tokens.revoke("ls-webhook")
    answer = client.post("/label-studio/webhook", json=event, headers=basic(label))
    assert answer.status_code == 401 and answer.json()["detail"].startswith("Revoked API key: token 'ls-webhook'")
    assert label not in answer.text


def test_the_label_studio_password_opens_label_studio_routes_only(trained_state, make_settings, start_client):
    client = start_client(make_settings(trained_state, api_key=KEY, label_studio_password="ls-password",
                                        label_studio_username="label-studio"))
    setup = {"project": 5, "schema": CONFIG}
    assert client.post("/label-studio/setup", json=setup, headers=basic("ls-password")).status_code == 200
    for wrong_user in (basic("ls-password", user="someone"), basic(KEY, user="someone")):
        answer = client.post("/label-studio/setup", json=setup, headers=wrong_user)
        assert answer.status_code == 401 and "wrong user or password" in answer.json()["detail"]
    assert client.post("/label-studio/webhook", json={"action": "X"}, headers=basic("ls-password")).status_code == 200
    assert client.get("/jobs", headers={"Authorization": "Bearer ls-password"}).status_code == 401
    # without ADGM_API_KEY only the password is checked, and only on these routes
    open_client = start_client(make_settings(label_studio_password="ls-password"))
    assert open_client.post("/label-studio/setup", json=setup).status_code == 401
    assert open_client.post("/label-studio/setup", json=setup, headers=basic("ls-password")).status_code == 200
    assert open_client.get("/jobs").status_code == 200


@pytest.mark.parametrize("config, words", [
    ("<View><Image", "not XML"),
    ('<View><Image name="image" value="$image"/></View>', "<Choices"),
    ('<View><Choices name="c" toName="image"><Choice value="a"/><Choice value="b"/></Choices></View>', "<Image"),
    ('<View><Image name="image" value="$image"/><Choices name="c" toName="image"><Choice value="a"/></Choices></View>',
     "two distinct"),
])
def test_a_config_it_cannot_serve_gets_a_422_naming_why(backend, config, words):
    client, _url, _seen = backend
    answer = client.post("/label-studio/setup", json={"project": 3, "schema": config}, headers=basic(KEY))
    assert answer.status_code == 422 and words in answer.json()["detail"], answer.text


def test_predictions_fetch_only_from_label_studio_within_limits(backend):
    client, url, seen = backend
    tasks = [{"id": 1, "data": {"image": "/digit.png"}},  # relative: on Label Studio's host
             {"id": 2, "data": {"image": f"{url}/digit.png"}},
             {"id": 3, "data": {"image": "http://169.254.169.254/latest/meta-data"}},
             {"id": 4, "data": {"image": f"{url.replace('127.0.0.1', 'localhost')}/digit.png"}},
             {"id": 5, "data": {"image": "/big.png"}},
             {"id": 6, "data": {"image": "/slow.png"}},
             {"id": 7, "data": {"image": "/missing.png"}},
             {"id": 8, "data": {}},
             {"id": 9, "data": {"image": "file:///etc/passwd"}}]
    answer = client.post("/label-studio/predict", json={"tasks": tasks, "label_config": CONFIG, "project": "5.1"},
                         headers=basic(KEY))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(tasks)
    for result in results[:2]:
        (region,) = result["result"]
        assert region["from_name"] == "digit" and region["to_name"] == "image" and region["type"] == "choices"
        assert region["value"]["choices"][0] in [str(k) for k in range(10)] and 0 < result["score"] <= 1
    assert results[0] == results[1]
    errors = {task["id"]: result.get("error", "") for task, result in zip(tasks, results)}
    for task_id in (3, 4, 9):
        assert "is not on" in errors[task_id] and results[task_id - 1]["result"] == [], errors[task_id]
    assert "larger than 100000 bytes" in errors[5]
    assert "in time" in errors[6]
    assert "answered 404" in errors[7]
    assert "no image URL" in errors[8]
    assert set(seen) == {f"Token {TOKEN}"}  # every fetch carried the token, and only those to the host were made
    assert len(seen) == 5


def test_predictions_need_a_label_studio_url(trained_state, make_settings, start_client):
    client = start_client(make_settings(trained_state))
    answer = client.post("/label-studio/predict", json={"tasks": [{"id": 1, "data": {"image": "/x.png"}}],
                                                         "label_config": CONFIG})
    assert answer.status_code == 422 and "ADGM_LABEL_STUDIO_URL" in answer.json()["detail"]


def test_events_of_a_project_never_set_up_get_a_422(backend):
    client, _url, _seen = backend
    answer = client.post("/label-studio/webhook", headers=basic(KEY),
                         json={"action": "ANNOTATION_CREATED", "project": {"id": 99}, "task": {"id": 1},
                               "annotation": {"id": 1, "result": []}})
    assert answer.status_code == 422 and "not set up" in answer.json()["detail"]
    other = client.post("/label-studio/webhook", headers=basic(KEY), json={"action": "PROJECT_UPDATED"})
    assert other.json() == {"action": "PROJECT_UPDATED", "ignored": True}
