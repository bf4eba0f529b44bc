"""Promise 7: with ADGM_API_KEY set, every route that changes state refuses a missing or wrong key
and does what it should with the right one; every read but the public ones (app/api/access.py)
refuses a missing or wrong key too, and no refused request changes anything; body limits hold for
declared and for streamed bodies; no request makes the server touch a path built from what the
client sent; the containers run as an unprivileged user.

Routes are enumerated from the app's own OpenAPI document, so a new route fails these tests until
it is given its place here (tests/api/routes/test_access.py sweeps every route with every scope).
"""

import io
import json
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from fault_harness import REPO_ROOT
from image_files import encode

KEY = "the-right-key"
WRONG = ["", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", f"Basic {KEY}", KEY,
         f"Token {KEY}", f"Bearer  {KEY} extra"]
STATE_CHANGING = {"post", "put", "patch", "delete"}


def npz() -> bytes:
    labels = np.full(40, -1, np.int64)
    labels[:20] = np.arange(20) % 10
    buffer = io.BytesIO()
    np.savez(buffer, images=np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8), labels=labels)
    return buffer.getvalue()


@pytest.fixture
def keyed(trained_state, make_settings, start_client):
    """The app with ADGM_API_KEY set, on a copy of the session's store (one job, one model) with one
    more queued job; uploads limited to 64 KiB so the limit is quick to cross."""
    settings = make_settings(trained_state, api_key=KEY, max_upload_bytes=64 * 1024)
    client = start_client(settings)
    queued = client.post("/train", json={"epochs": 1}, headers={"Authorization": f"Bearer {KEY}"}).json()["id"]
    return client, settings, queued


def operations(client) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return sorted((method, path) for path, methods in schema["paths"].items() for method in methods)


def concrete(path: str, job_id: str, model_id: str, dataset_id: str = "digits5k") -> str:
    return path.replace("{job_id}", job_id).replace("{model_id}", model_id).replace("{name}", "default") \
        .replace("{dataset_id}", dataset_id).replace("{index}", "0").replace("{upload_id}", UNKNOWN_UPLOAD)


UNKNOWN_UPLOAD = "0" * 32  # a small .npz upload is stored at once and leaves no upload record to poll


def state_of(client, settings) -> tuple:
    """What a state-changing request could change: jobs, models, data sets, files."""
    files = sorted(str(path.relative_to(settings.artifact_dir)) for path in settings.artifact_dir.rglob("*"))
    auth = {"Authorization": f"Bearer {KEY}"}
    return (client.get("/jobs", headers=auth).json(), client.get("/models", headers=auth).json(),
            client.get("/datasets", headers=auth).json(), files)


def test_every_state_changing_route_needs_the_key_and_works_with_it(keyed, trained_state, test_digits):
    client, settings, queued = keyed
    digit = encode(test_digits[0][0])
    uploaded = client.post("/datasets", files={"file": ("d.npz", npz())}, headers={"Authorization": f"Bearer {KEY}"})
    dataset_id = uploaded.json()["id"]
    # What the right key must achieve on each route: (request, expected status, check of the answer).
    accepted = {
        ("post", "/train"): (dict(json={"epochs": 1}), 202, lambda body: body["status"] == "queued"),
        ("post", "/datasets"): (dict(files={"file": ("d.npz", npz())}), 201, lambda body: body["n_images"] == 40),
        ("post", "/datasets/{dataset_id}/labels"): (dict(json=[{"index": 30, "label": 3}]), 200,
                                                    lambda body: body["version"] == 2),
        ("post", "/classify"): (dict(files={"files": ("d.png", digit)}), 200,
                                lambda body: len(body["results"][0]["probabilities"]) == 10),
        ("post", "/analogies"): (dict(files={"file": ("d.png", digit)}), 200, None),
        ("post", "/jobs/{job_id}/cancel"): (dict(), 202, lambda body: body["status"] == "cancelled"),
        ("delete", "/models/{model_id}"): (dict(), 204, None),
        ("post", "/v2/models/{name}/infer"): (dict(json=oip_request(test_digits[0][0])), 200,
                                              lambda body: len(body["outputs"][0]["data"]) == 10),
    }
    changing = [(method, path) for method, path in operations(client) if method in STATE_CHANGING
                and not path.startswith("/label-studio/")]  # Label Studio's requests: tests/api/routes/test_label_studio_backend.py
    assert sorted(accepted) == changing, "a state-changing route without its case here"

    before = state_of(client, settings)
    for method, path in changing:
        url = concrete(path, queued, trained_state.model_id, dataset_id)
        request, _, _ = accepted[(method, path)]
        missing = client.request(method.upper(), url, **request)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer", (method, path)
        answer = missing.json()  # {"error": …} on the Open Inference Protocol's routes
        assert answer.get("detail", answer.get("error", "")).startswith("Missing API key")
        for wrong in WRONG:
            answer = client.request(method.upper(), url, headers={"Authorization": wrong}, **request)
            assert answer.status_code == 401 and KEY not in answer.text, (method, path, wrong)
    assert state_of(client, settings) == before, "a refused request changed something"

    for method, path in sorted(changing, key=lambda route: route[0] == "delete"):  # DELETE last: classify needs the model
        request, status, check = accepted[(method, path)]
        url = concrete(path, queued, trained_state.model_id, dataset_id)
        answer = client.request(method.upper(), url, headers={"Authorization": f"Bearer {KEY}"}, **request)
        assert answer.status_code == status, (method, path, answer.text)
        if check is not None:
            assert check(answer.json()), (method, path)
        if path == "/analogies":
            assert Image.open(io.BytesIO(answer.content)).size == (2 + 10 * 30, 2 + 30)
    assert client.get(f"/models/{trained_state.model_id}", headers={"Authorization": f"Bearer {KEY}"}).status_code == 404


PUBLIC_READS = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/label-studio/health", "/label-studio/",
                "/presets"}


def test_reads_need_the_key_except_the_public_ones(keyed, trained_state):
    """docs/reliability.md: with a key, nothing a user uploaded or trained is readable without it;
    the probes and the presets stay open."""
    client, settings, _queued = keyed
    uploaded = client.post("/datasets", files={"file": ("d.npz", npz())}, headers={"Authorization": f"Bearer {KEY}"})
    reads = [path for method, path in operations(client) if method == "get"]
    assert {"/jobs/{job_id}/events", "/sample", "/models/{model_id}", "/datasets/{dataset_id}/labels",
            "/datasets/{dataset_id}/images/{index}", "/models/{model_id}/export", "/metrics"} <= set(reads)
    assert PUBLIC_READS <= set(reads)
    before = state_of(client, settings)
    for path in reads:
        url = concrete(path, trained_state.job_id, trained_state.model_id, uploaded.json()["id"])
        params = {"label": 1} if path == "/sample" else None
        if path in PUBLIC_READS:
            assert client.get(url, params=params).status_code == 200, path
            continue
        for wrong in [None, *WRONG]:
            answer = client.get(url, params=params, headers={"Authorization": wrong} if wrong is not None else {})
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", (path, wrong)
            assert KEY not in answer.text and b"\x89PNG" not in answer.content and b"adgm_jobs" not in answer.content
        answer = client.get(url, params=params, headers={"Authorization": f"Bearer {KEY}"})
        expected = 404 if path == "/uploads/{upload_id}" else 200  # past the key check: the record is unknown
        assert answer.status_code == expected, (path, answer.text)
    assert state_of(client, settings) == before


def oip_request(image: np.ndarray) -> dict:
    return {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, image.size], "data": image.ravel().tolist()}],
            "outputs": [{"name": "probabilities"}]}


def oversized(path: str, limit: int) -> tuple[dict, bytes]:
    """(headers, body) one byte or more over `limit`, in the form the route reads: a multipart
    upload, or JSON for /train and the inference protocol (a body of the wrong type would never be
    read at all)."""
    if path in ("/train", "/v2/models/{name}/infer", "/datasets/{dataset_id}/labels") or path.startswith("/label-studio/"):
        return {"Content-Type": "application/json"}, json.dumps({"name": "x" * limit}).encode()
    field = {"/classify": "files"}.get(path, "file")
    request = httpx.Request("POST", "http://x/", files={field: ("big.bin", b"\0" * limit)})
    return dict(request.headers), request.read()


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_body_limits_hold_on_every_route_with_a_body(keyed, streamed):
    client, settings, _queued = keyed
    limits = {"/train": 64 * 1024, "/datasets": settings.max_upload_bytes, "/classify": settings.max_upload_bytes,
              "/analogies": settings.max_upload_bytes, "/v2/models/{name}/infer": settings.max_upload_bytes,
              "/datasets/{dataset_id}/labels": settings.max_upload_bytes,
              **{f"/label-studio/{route}": settings.max_upload_bytes for route in ("setup", "predict", "webhook")}}
    paths = client.get("/openapi.json").json()["paths"]
    with_body = [path for method, path in operations(client) if method == "post" and paths[path]["post"].get("requestBody")]
    assert sorted(with_body) == sorted(limits)
    before = state_of(client, settings)
    for path, limit in limits.items():
        headers, body = oversized(path, limit)
        headers = {key: value for key, value in headers.items() if key.lower() == "content-type"}
        content = (body[i:i + 4096] for i in range(0, len(body), 4096)) if streamed else body
        answer = client.post(path.replace("{name}", "default").replace("{dataset_id}", "digits5k"), content=content,
                             headers={**headers, "Authorization": f"Bearer {KEY}"})
        assert answer.status_code == 413, (path, answer.text)
        key = "error" if path.startswith("/v2/") else "detail"  # the inference protocol's form
        assert answer.json() == {key: f"The request body is larger than the limit of {limit} bytes."}
    assert state_of(client, settings) == before


class FileAudit:
    """Records every path the process opens, lists, creates, renames or removes (PEP 578 audit
    events) while `recording`; the hook stays installed for the session, idle otherwise."""

    EVENTS = {"open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.replace", "os.remove",
              "os.rmdir", "shutil.rmtree", "shutil.copyfile", "os.unlink", "os.link", "os.symlink"}
    installed = None

    def __init__(self):
        self.recording = False
        self.paths: list[str] = []  # every path touched
        self.written: list[str] = []  # paths opened for writing, created, renamed or removed
        self.lock = threading.Lock()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if self.recording and event in self.EVENTS:
            writes = event != "open" or self._opens_for_writing(args)
            with self.lock:
                for arg in args[:1] if event == "open" else args[:2]:
                    if isinstance(arg, (str, bytes, Path)):
                        self.paths.append(os.fsdecode(arg))
                        if writes:
                            self.written.append(os.fsdecode(arg))

    @staticmethod
    def _opens_for_writing(args: tuple) -> bool:
        _path, mode, flags = args
        if isinstance(mode, str):
            return any(letter in mode for letter in "wax+")
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    @classmethod
    def get(cls) -> "FileAudit":
        if cls.installed is None:
            cls.installed = cls()
        return cls.installed


HOSTILE = ["../../../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
           "....//....//etc/passwd", "C:\\Windows\\win.ini", "evil\u2215..\u2215passwd", "%00evil"]


def test_no_route_touches_a_path_built_from_client_input(keyed):
    client, settings, _queued = keyed
    auth = {"Authorization": f"Bearer {KEY}"}
    audit = FileAudit.get()
    audit.paths.clear()
    audit.written.clear()
    audit.recording = True
    try:
        for hostile in HOSTILE:
            for method, path in operations(client):
                if "{" in path:
                    client.request(method.upper(), re.sub(r"\{[^}]+\}", lambda _: hostile, path), headers=auth)
            client.get("/sample", params={"label": 1, "model": hostile}, headers=auth)
            client.post("/classify", params={"model": hostile}, files={"files": (hostile, b"x")}, headers=auth)
            client.post("/train", json={"dataset": hostile, "name": hostile}, headers=auth)
            upload = client.post("/datasets", files={"file": (hostile, npz())}, data={"name": hostile}, headers=auth)
            assert upload.status_code == 201  # a valid upload under a hostile name is stored under its own id
            stored = settings.artifacts.datasets_dir / f"{upload.json()['id']}.npz"
            assert stored.is_file()
    finally:
        audit.recording = False
    touched = [p for p in audit.paths if any(mark in p for mark in ("passwd", "evil", "win.ini", ".."))]
    assert touched == [], touched
    assert audit.paths, "the audit hook saw nothing: it is not recording"
    state = settings.artifact_dir.parent
    temporary = Path(tempfile.gettempdir())
    written = {Path(p) for p in audit.written}
    assert written, "the uploads were stored, so something was written"
    stray = [p for p in written if not (p.is_relative_to(state) or (p.parent == temporary and p.name.startswith("tmp")))]
    assert stray == [], f"written outside the state directory: {stray}"


def test_the_containers_run_as_an_unprivileged_user():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)
    final = stages[-1]
    users = re.findall(r"^USER\s+(\S+)", final, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image's last USER is root"
    assert final.rindex("\nUSER ") < final.index("\nCMD "), "CMD runs before USER is set"
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    ours = {name: service for name, service in compose["services"].items()
            if "build" in service or str(service.get("image", "")).startswith("adgm-serve")}
    assert {"api", "worker", "worker-cpu"} <= set(ours)
    for name, service in ours.items():
        assert str(service.get("user", "unset")).split(":")[0] not in ("root", "0"), name
        assert not service.get("privileged", False), name
        assert "cap_add" not in service, name
    published = sorted(name for name, service in compose["services"].items() if service.get("ports"))
    assert published == ["api"], "only the API is reachable from outside; redis and postgres are not"
