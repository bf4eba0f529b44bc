"""Promise 5: no input a client can send gets a 5xx, every answer matches the OpenAPI schema, and
each bad input gets a 4xx whose detail names the problem.

One live server (uvicorn, API key set, a real trained model) serves the whole module:
- schemathesis, every check, against the server's own /openapi.json (≥ 1,000 requests);
- a hand-made corpus of bad files, bodies, parameters and ids, each checked for its status and
  the words of its detail, the server answering /healthz after each;
- random valid images of random sizes and modes, which are classified, never a server error.
"""

import base64
import io
import json
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from store.db import make_engine, make_sessionmaker
from store.tables import TrainedModel
from fault_harness import BIN, REPO_ROOT, Api
from image_files import encode
from process_harness import Process, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LABEL_STUDIO_AUTH = "Basic " + base64.b64encode(f"label-studio:{KEY}".encode()).decode()
FUZZ_EXAMPLES = int(os.environ.get("ADGM_FUZZ_EXAMPLES", "60"))  # per operation and phase
FUZZ_SEED = os.environ.get("ADGM_FUZZ_SEED", "0")


@dataclass(frozen=True)
class LiveServer:
    url: str
    model_id: str
    spare_model_id: str  # the one DELETE may remove
    directory: Path
    api: Api

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def live(tmp_path_factory, trained_state):
    """uvicorn on a copy of the session's trained state plus a spare copy of its model; no
    training worker (jobs stay queued), ADGM_API_KEY set."""
    directory = tmp_path_factory.mktemp("live")
    state = directory / "state"
    trained_state.copy_to(state)
    spare = "5" * 32
    shutil.copytree(state / "artifacts" / "models" / trained_state.model_id, state / "artifacts" / "models" / spare)
    engine = make_engine(f"sqlite:///{state / 'adgm.sqlite'}")
    with make_sessionmaker(engine).begin() as session:
        original = session.get(TrainedModel, trained_state.model_id)
        session.add(TrainedModel(id=spare, name="spare", job_id=None, dataset=original.dataset,
                                 created_at=original.created_at.replace(year=2000), config=original.config,
                                 metrics=original.metrics, sha256=original.sha256))
    engine.dispose()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
    env.update(PYTHONPATH=str(REPO_ROOT), ADGM_DATABASE_URL=f"sqlite:///{state / 'adgm.sqlite'}",
               ADGM_ARTIFACT_DIR=str(state / "artifacts"), ADGM_MNIST_DIR="", ADGM_EMBEDDED_WORKERS="0",
               ADGM_API_KEY=KEY, ADGM_LABEL_STUDIO_URL=f"http://127.0.0.1:{free_port()}")  # a Label Studio that is away
    started: list[Process] = []

    def start_process(*args) -> Process:
        started.append(Process(*args))
        return started[-1]

    api = Api(start_process, directory).start(env)
    yield LiveServer(api.url, trained_state.model_id, spare, directory, api)
    for process in started:
        process.stop(timeout=10)


def serves(live: LiveServer) -> bool:
    """The server still answers, and with the model: /healthz and a sample PNG."""
    with live.client() as client:
        sample = client.get("/sample", params={"label": 3, "n": 2, "model": live.model_id})
        return client.get("/healthz").json() == {"status": "ok"} and sample.content.startswith(b"\x89PNG")


# ---------------------------------------------------------------------------------------------
# schemathesis


SCHEMATHESIS_CONFIG = """
headers = {{ Authorization = "Bearer {key}" }}

[dictionaries.models]
values = ["{model}"]

[dictionaries.spare_models]
values = ["{spare}"]

[dictionaries.model_names]
values = ["default", "{model}"]

# Server-Sent Events of a job that never ends (no training worker here) would stream forever;
# the events route has its own corpus cases below.
[[operations]]
include-path-regex = "/events$"
enabled = false

# Use the real model most of the time, so that sampling and classification run the model.
[[operations]]
include-name-regex = "^(GET /sample|POST /classify|POST /analogies)$"
parameters = {{ "query.model" = {{ dictionary = "models", probability = 0.7 }} }}

[[operations]]
include-name-regex = "^GET /models/.model_id.(/export)?$"
parameters = {{ "path.model_id" = {{ dictionary = "models", probability = 0.5 }} }}

# DELETE /models/{{model_id}} runs on its own afterwards (it would delete the model used above).
[[operations]]
include-name = "DELETE /models/{{model_id}}"
enabled = {delete}
parameters = {{ "path.model_id" = {{ dictionary = "spare_models", probability = 0.5 }} }}

# Valid by the schema, refused by the content: a schema cannot say "an .npz archive", "a PNG",
# "no more labels per class than the data set has" or "a label this model has"; nor that the
# queue is full.
[[operations]]
include-name = "POST /datasets"
checks.positive_data_acceptance.expected-statuses = ["201", "422"]

[[operations]]
include-name = "POST /train"
# 429: the queued-jobs cap; 404 and 409: an init_model that does not exist or does not fit
checks.positive_data_acceptance.expected-statuses = ["202", "404", "409", "422", "429"]

# A data set's routes: MNIST may not be on this server, an index may lie past its images, a label
# past its classes, and a model may not fit it.
[[operations]]
include-path-regex = "^/datasets/.dataset_id."
checks.positive_data_acceptance.expected-statuses = ["200", "404", "409", "422", "503"]

[[operations]]
include-name-regex = "^POST /(classify|analogies)$"
checks.positive_data_acceptance.expected-statuses = ["200", "404", "413", "415", "422"]

[[operations]]
include-name = "GET /sample"
checks.positive_data_acceptance.expected-statuses = ["200", "404", "422"]

# Label Studio's backend takes basic auth (the API key as password). Its bodies are Label Studio's
# own, mostly free-form: a config, project or task it cannot serve gets 422; predictions before a
# model exists would get 503 (there is one here).
[[operations]]
include-path-regex = "^/label-studio/"
headers = {{ Authorization = "{label_studio_auth}" }}
checks.positive_data_acceptance.expected-statuses = ["200", "422"]

# The Open Inference Protocol's routes: a model name is any string (unknown ones get 404), and a
# request valid by the protocol's schema can still hold the wrong tensor for this model (400).
[[operations]]
include-path-regex = "^/v2/models/"
parameters = {{ "path.name" = {{ dictionary = "model_names", probability = 0.7 }} }}
checks.positive_data_acceptance.expected-statuses = ["200", "400", "404"]
"""


def run_schemathesis(live: LiveServer, name: str, delete: bool, extra: list[str]) -> list[dict]:
    """Runs `schemathesis run` with every check; returns the recorded interactions."""
    config = live.directory / f"{name}.toml"
    config.write_text(SCHEMATHESIS_CONFIG.format(key=KEY, model=live.model_id, spare=live.spare_model_id,
                                                 delete=str(delete).lower(), label_studio_auth=LABEL_STUDIO_AUTH))
    cassette = live.directory / f"{name}.yaml"
    command = [str(BIN / "schemathesis"), "--config-file", str(config), "--no-color", "run",
               f"{live.url}/openapi.json", "--checks", "all", "--max-examples", str(FUZZ_EXAMPLES),
               "--seed", FUZZ_SEED, "--workers", "1", "--request-timeout", "30", "--report", "vcr",
               "--report-vcr-path", str(cassette), *extra]
    result = subprocess.run(command, cwd=live.directory, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"schemathesis {name} failed:\n{result.stdout[-12000:]}\n{result.stderr[-3000:]}"
    return yaml.safe_load(cassette.read_text())["http_interactions"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live):
    interactions = run_schemathesis(live, "fuzz", delete=False, extra=[])
    interactions += run_schemathesis(live, "fuzz-delete", delete=True,
                                     extra=["--include-name", "DELETE /models/{model_id}"])
    statuses: dict[str, dict[int, int]] = {}
    for interaction in interactions:
        request = interaction["request"]
        operation = f"{request['method']} {httpx.URL(request['uri']).path}"
        code = int(interaction["response"]["status"]["code"])
        assert code < 500, f"{operation} answered {code}: {interaction['response']['body']}"
        for label in (operation.split("/")[0] + "/" + operation.split("/")[1], "all"):
            statuses.setdefault(label, {}).setdefault(code, 0)
            statuses[label][code] += 1
    assert len(interactions) >= 1000
    # The model was exercised, not only the error paths: PNG samples and model lookups that passed.
    assert statuses["GET /sample"].get(200, 0) > 0
    assert sum(count for code, count in statuses["POST /classify"].items() if code not in (401, 404)) > 0
    assert statuses["DELETE /models"].get(204, 0) == 1  # the spare model, deleted once
    assert statuses["GET /v2"].get(200, 0) > 0 and statuses["POST /v2"].get(400, 0) > 0  # OIP metadata, parser
    assert statuses["POST /label-studio"].get(200, 0) > 0  # past basic auth, into the backend
    assert serves(live)
    print("RELIABILITY fuzz", json.dumps({"requests": len(interactions), "server_errors": 0, "seed": FUZZ_SEED,
                                         "examples_per_operation": FUZZ_EXAMPLES, "statuses": statuses["all"]}))


# ---------------------------------------------------------------------------------------------
# the hand-made corpus


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 60_000) -> bytes:
    """A 6 KB file whose header declares side × side grey pixels (3.6 gigapixels)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * (side + 1) * 100, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [Image.new("L", (28, 28), shade) for shade in (0, 255)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def digit_png() -> bytes:
    image = Image.new("L", (28, 28), 0)
    image.paste(255, (12, 4, 16, 24))  # a bright stroke: a "1"
    return encode(image)


ID = "0" * 32
BAD_FILES = {  # name → (bytes, status, words of the detail)
    "empty file": (b"", 422, "empty"),
    "text renamed .png": (b"these are not pixels, whatever the name says", 415, "PNG or JPEG"),
    "truncated PNG": (digit_png()[:60], 422, "truncated"),
    "PNG with a broken checksum": (digit_png()[:37] + b"X" + digit_png()[38:], 422, "corrupt"),
    "truncated JPEG": (encode(Image.new("RGB", (28, 28)), "JPEG")[:100], 422, "corrupt"),
    "1×1 image": (encode(Image.new("L", (1, 1), 0)), 422, "blank"),
    "fully transparent image": (encode(Image.new("RGBA", (28, 28), (0, 0, 0, 0))), 422, "blank"),
    "10,000×10,000 image": (encode(Image.new("L", (10_000, 10_000), 0)), 413, "100,000,000 pixels"),
    "decompression bomb": (bomb_png(), 413, "3,600,000,000 pixels"),
    "animated GIF": (animated_gif(), 415, "GIF"),
    "BMP": (encode(Image.new("L", (28, 28)), "BMP"), 415, "BMP"),
    "WebP": (encode(Image.new("L", (28, 28)), "WEBP"), 415, "WEBP"),
    "TIFF": (encode(Image.new("L", (28, 28)), "TIFF"), 415, "TIFF"),
}


@pytest.mark.parametrize("route", ["/classify", "/analogies"])
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_image_gets_a_4xx_naming_the_problem_and_the_file(live, name, route):
    content, status, words = BAD_FILES[name]
    field = "files" if route == "/classify" else "file"
    with live.client() as client:
        response = client.post(route, files={field: ("upload.png", content, "image/png")})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail.startswith("upload.png: ") and words in detail, detail
    assert serves(live)


def request_cases():
    """(name, method, path, keyword arguments of httpx, status, words of the detail)."""
    huge = json.dumps({"name": "x" * 200_000})
    yield "JSON body over 64 KiB", "POST", "/train", dict(content=huge, headers={"Content-Type": "application/json"}), 413, "65536 bytes"
    yield "streamed body over 64 KiB", "POST", "/train", dict(content=(b"x" * 65_536 for _ in range(3)), headers={"Content-Type": "application/json"}), 413, "65536 bytes"
    yield "upload over the body limit", "POST", "/classify", dict(files={"files": ("a.png", b"\0" * (21 * 1024 * 1024))}), 413, "limit"
    yield "nested JSON 10,000 deep", "POST", "/train", dict(content="[" * 10_000 + "]" * 10_000, headers={"Content-Type": "application/json"}), 400, "parsing the body"
    yield "malformed JSON", "POST", "/train", dict(content="{bad", headers={"Content-Type": "application/json"}), 422, "JSON decode error"
    yield "NaN in JSON", "POST", "/train", dict(content='{"learning_rate": NaN}', headers={"Content-Type": "application/json"}), 422, "learning_rate"
    yield "1e400 in JSON", "POST", "/train", dict(content='{"epochs": 1e400}', headers={"Content-Type": "application/json"}), 422, "epochs"
    yield "a 5,000-digit integer", "POST", "/train", dict(content='{"epochs": ' + "9" * 5000 + "}", headers={"Content-Type": "application/json"}), 400, "parsing the body"
    yield "JSON array instead of object", "POST", "/train", dict(json=[1, 2]), 422, "valid dictionary"
    yield "text/plain body", "POST", "/train", dict(content='{"epochs": 1}', headers={"Content-Type": "text/plain"}), 422, "valid dictionary"
    yield "unknown field", "POST", "/train", dict(json={"epochs": 1, "surprise": 1}), 422, "surprise"
    yield "more labels than the data set has", "POST", "/train", dict(json={"labels_per_class": 1000}), 422, "labels_per_class"
    yield "unicode data set id", "POST", "/train", dict(json={"dataset": "ｍｎｉｓｔ"}), 422, "dataset"
    yield "path as data set id", "POST", "/train", dict(json={"dataset": "../../etc/passwd"}), 422, "dataset"
    yield "JSON to /classify", "POST", "/classify", dict(json={"files": "x"}), 422, "files"
    yield "text field instead of a file", "POST", "/classify", dict(data={"files": "x"}), 422, "UploadFile"
    yield "multipart without boundary", "POST", "/classify", dict(content=b"abc", headers={"Content-Type": "multipart/form-data"}), 400, "boundary"
    yield "65 files in one request", "POST", "/classify", dict(files=[("files", ("a.png", digit_png()))] * 65), 400, "Too many files"
    yield "JSON to /datasets", "POST", "/datasets", dict(json={"file": "x"}), 422, "file"
    yield "not an .npz", "POST", "/datasets", dict(files={"file": ("d.npz", b"PK\x03\x04 not a zip")}), 422, "npz"
    yield "negative n", "GET", "/sample", dict(params={"label": 1, "n": -1}), 422, "greater than or equal to 1"
    yield "enormous n", "GET", "/sample", dict(params={"label": 1, "n": 10**30}), 422, "less than or equal to 100"
    yield "label of no class", "GET", "/sample", dict(params={"label": 10}), 422, "out of range"
    yield "negative label", "GET", "/sample", dict(params={"label": -1}), 422, "label"
    yield "seed past 2^31", "GET", "/sample", dict(params={"label": 1, "seed": 2**64}), 422, "seed"
    yield "no label", "GET", "/sample", {}, 422, "label"
    yield "limit past 1000", "GET", "/jobs", dict(params={"limit": 10**20}), 422, "limit"
    for job_or_model, path in (("job", "/jobs/{}"), ("model", "/models/{}"), ("job", "/jobs/{}/events")):
        yield f"unknown {job_or_model} id on {path}", "GET", path.format(ID), {}, 404, "does not exist"
        for bad in ("é" * 32, "💥", "A" * 32, "0" * 33, "%2e%2e", "%00", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"):
            yield f"{bad!r} as {job_or_model} id on {path}", "GET", path.format(bad), {}, None, None
    for bad in ("../../etc/passwd", "/etc/passwd", "é" * 32, "%2e%2e"):
        yield f"{bad!r} as model query", "GET", "/sample", dict(params={"label": 1, "model": bad}), 422, "model"
    yield "cancel unknown job", "POST", f"/jobs/{ID}/cancel", {}, 404, "does not exist"
    yield "delete unknown model", "DELETE", f"/models/{ID}", {}, 404, "does not exist"
    yield "wrong method", "PUT", f"/models/{ID}", {}, 405, "DELETE, GET"


CASES = list(request_cases())


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_bad_request_gets_a_4xx_naming_the_problem(live, case):
    name, method, path, options, status, words = case
    with live.client() as client:
        response = client.request(method, path, **options)
    if status is None:  # an id that is not 32 hex characters: refused without a lookup
        assert response.status_code in (404, 422), response.text
        if response.status_code == 422:
            assert "should match pattern" in response.text
    else:
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert words in (detail if isinstance(detail, str) else json.dumps(detail)), detail
    assert response.headers["content-type"] == "application/json"
    assert serves(live)


def test_odd_but_valid_images_are_classified_as_their_plain_version(live):
    """16-bit, CMYK, palette, 1-bit and animated PNG are read, not refused: each answers what the
    plain 8-bit image answers (animated PNG: its first frame)."""
    stroke = Image.open(io.BytesIO(digit_png()))
    pixels = np.asarray(stroke)
    variants = {
        "16-bit": encode(Image.fromarray(pixels.astype(np.uint16) * 257)),
        "palette": encode(stroke.convert("P")),
        "1-bit": encode(stroke.convert("1")),
        "animated PNG": encode(stroke, save_all=True, append_images=[stroke.rotate(90)]),
        "grey+alpha": encode(stroke.convert("LA")),
    }
    with live.client() as client:
        def classify(content: bytes) -> dict:
            response = client.post("/classify", files={"files": ("x.png", content)})
            assert response.status_code == 200, response.text
            return response.json()["results"][0]

        plain = classify(digit_png())
        for name, content in variants.items():
            result = classify(content)
            assert result["label"] == plain["label"], name
            assert result["probabilities"] == pytest.approx(plain["probabilities"], abs=1e-3), name
        rgb, cmyk = classify(encode(stroke.convert("RGB"), "JPEG", quality=95)), classify(
            encode(stroke.convert("CMYK"), "JPEG", quality=95))
        assert cmyk["label"] == rgb["label"]
        assert cmyk["probabilities"] == pytest.approx(rgb["probabilities"], abs=0.05)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 300), height=st.integers(1, 300),
       mode=st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16"]), jpeg=st.booleans(), seed=st.integers(0, 2**16))
def test_random_valid_images_are_classified_or_called_blank(live, width, height, mode, jpeg, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    if jpeg and mode in ("L", "RGB"):
        content = encode(image, "JPEG")
    else:
        content = encode(image)
    with live.client() as client:
        response = client.post("/classify", files={"files": ("random.png", content)})
    if response.status_code == 422:
        assert "blank" in response.json()["detail"], response.text
    else:
        assert response.status_code == 200, response.text
        probabilities = response.json()["results"][0]["probabilities"]
        assert len(probabilities) == 10 and sum(probabilities) == pytest.approx(1, abs=1e-4)
