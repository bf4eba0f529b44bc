"""The Open Inference Protocol v2 with its real client, `tritonclient.http`, against uvicorn with an
API key, the client holding an `infer` token: health, metadata, a batch whose probabilities are
those of POST /classify, and the errors the protocol expects (wrong datatype, wrong shape, unknown
model, missing or wrong key) as `{"error": …}` with a 4xx."""

import os
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from adgm_core.images import decode_upload, to_model_input
from image_files import encode
from process_harness import Process, free_port, wait_until_healthy
from store.db import make_engine, make_sessionmaker
from store.scopes import Scope
from store.tokens import TokenStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "oip-key"


@pytest.fixture(scope="module")
def state(tmp_path_factory, trained_state):
    """A copy of the session's trained state (migrated) with an infer token; (directory, token)."""
    directory = tmp_path_factory.mktemp("oip")
    trained_state.copy_to(directory / "state")
    engine = make_engine(f"sqlite:///{directory / 'state' / 'adgm.sqlite'}")
    token = TokenStore(make_sessionmaker(engine)).create(Scope.INFER, "kserve")[1]
    engine.dispose()
    return directory, token


@pytest.fixture
def auth(state) -> dict:
    """The infer token's header; tritonclient adds headers to the dict it is given, so each test gets its own."""
    return {"Authorization": f"Bearer {state[1]}"}


@pytest.fixture(scope="module")
def server(state):
    """uvicorn on that state, ADGM_API_KEY set, no training worker."""
    directory, _token = state
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
    env.update(PYTHONPATH=str(REPO_ROOT), ADGM_DATABASE_URL=f"sqlite:///{directory / 'state' / 'adgm.sqlite'}",
               ADGM_ARTIFACT_DIR=str(directory / "state" / "artifacts"), ADGM_MNIST_DIR="",
               ADGM_EMBEDDED_WORKERS="0", ADGM_API_KEY=KEY, ADGM_MAX_INFER_IMAGES="64")
    port = free_port()
    process = Process("api", [str(BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
                      env, directory)

    wait_until_healthy(process, f"http://127.0.0.1:{port}/healthz", 90)
    yield f"127.0.0.1:{port}"
    process.stop(timeout=10)


@pytest.fixture
def client(server):
    client = triton.InferenceServerClient(url=server, network_timeout=60)
    yield client
    client.close()


def image_input(images: np.ndarray, datatype: str = "UINT8", binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("image", list(images.shape), datatype)
    return tensor.set_data_from_numpy(images, binary_data=binary)


def test_health_and_metadata(client, auth, trained_state):
    assert client.is_server_live() and client.is_server_ready()  # the probes are public
    assert client.is_model_ready("default", headers=dict(auth)) and client.is_model_ready(trained_state.model_id, headers=dict(auth))
    assert not client.is_model_ready("default")  # without the token
    assert not client.is_model_ready("0" * 32, headers=dict(auth)) and not client.is_model_ready("resnet", headers=dict(auth))
    server = client.get_server_metadata(headers=dict(auth))
    assert server["name"] == "adgm-serve" and "binary_tensor_data" in server["extensions"]
    metadata = client.get_model_metadata("default", headers=dict(auth))
    assert metadata["name"] == "default" and metadata["versions"] == [trained_state.model_id]
    assert metadata["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                                   {"name": "novelty", "datatype": "FP32", "shape": [-1]}]


def test_a_batch_gets_the_probabilities_of_classify(client, server, auth, trained_state, test_digits):
    """The same images as /classify sees them (its preprocessing of the PNGs) give the same
    numbers through every encoding the protocol allows."""
    digits, _labels = test_digits
    pngs = [encode(digit) for digit in digits[:24]]
    with httpx.Client(base_url=f"http://{server}", headers=auth, timeout=60) as http:
        answer = http.post("/classify", params={"novelty": "true"},
                           files=[("files", (f"{i}.png", png)) for i, png in enumerate(pngs)]).json()
    expected = np.array([result["probabilities"] for result in answer["results"]], np.float32)
    expected_novelty = np.array([result["novelty"] for result in answer["results"]], np.float32)
    images = np.stack([to_model_input(decode_upload(png), (28, 28)) for png in pngs])

    variants = {
        "binary UINT8 [N, 28, 28]": (trained_state.model_id, image_input(images)),
        "JSON UINT8 [N, 784]": ("default", image_input(images.reshape(len(images), -1), binary=False)),
        "binary FP32 k/255": ("default", image_input(images.astype(np.float32) / 255, "FP32")),
    }
    for name, (model, tensor) in variants.items():
        result = client.infer(model, [tensor], headers=dict(auth), request_id="batch-1")
        np.testing.assert_array_equal(result.as_numpy("probabilities"), expected, err_msg=name)
        np.testing.assert_array_equal(result.as_numpy("novelty"), expected_novelty, err_msg=name)
        response = result.get_response()
        assert response["model_version"] == trained_state.model_id and response["id"] == "batch-1", name
    only = client.infer("default", [image_input(images)], headers=dict(auth),
                        outputs=[triton.InferRequestedOutput("novelty", binary_data=False)])
    assert [output["name"] for output in only.get_response()["outputs"]] == ["novelty"]
    assert only.as_numpy("probabilities") is None
    without_novelty = client.infer("default", [image_input(images)], headers=dict(auth),  # novelty not computed
                                   outputs=[triton.InferRequestedOutput("probabilities")])
    np.testing.assert_array_equal(without_novelty.as_numpy("probabilities"), expected)
    assert without_novelty.as_numpy("novelty") is None


def refused(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("datatype, dtype", [("INT32", np.int32), ("FP64", np.float64), ("UINT16", np.uint16)])
def test_a_wrong_datatype_is_refused(client, auth, datatype, dtype):
    tensor = image_input(np.zeros((2, 28, 28), dtype), datatype)
    error = refused(lambda: client.infer("default", [tensor], headers=dict(auth)))
    assert error.status() == "400" and f"datatype '{datatype}'" in error.message() and "UINT8 or FP32" in error.message()


@pytest.mark.parametrize("shape", [(2, 27, 27), (2, 28, 28, 1), (2, 783), (65, 784)])
def test_a_wrong_shape_is_refused(client, auth, shape):
    error = refused(lambda: client.infer("default", [image_input(np.zeros(shape, np.uint8))], headers=dict(auth)))
    assert error.status() == "400", error
    assert ("[N, 28, 28] or [N, 784]" in error.message()) or ("1 to 64" in error.message()), error.message()


def test_an_unknown_model_is_refused(client, auth):
    tensor = image_input(np.zeros((1, 28, 28), np.uint8))
    for name in ("0" * 32, "resnet50"):
        error = refused(lambda: client.infer(name, [tensor], headers=dict(auth)))
        assert error.status() == "404" and "Unknown model" in error.message(), error
        assert refused(lambda: client.get_model_metadata(name, headers=dict(auth))).status() == "404"


def test_inference_needs_the_key_and_errors_are_the_protocols(client, server, auth, state):
    tensor = image_input(np.zeros((1, 28, 28), np.uint8))
    error = refused(lambda: client.infer("default", [tensor]))
    assert error.status() == "401" and error.message().startswith("Missing API key")
    error = refused(lambda: client.infer("default", [tensor], headers={"Authorization": "Bearer nope"}))
    assert error.status() == "401" and error.message().startswith("Invalid API key")
    error = refused(lambda: client.get_model_metadata("default"))
    assert error.status() == "401"
    with httpx.Client(base_url=f"http://{server}", headers=auth, timeout=30) as http:  # infer goes no further
        answer = http.get(f"/models/{'0' * 32}/export")
        assert answer.status_code == 403 and answer.json()["detail"].startswith("Scope infer cannot GET")
        assert state[1] not in answer.text
    with httpx.Client(base_url=f"http://{server}", headers=auth, timeout=30) as http:
        for body in (b"{not json", b"[1, 2]", b'{"inputs": []}',
                     b'{"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 784], "data": [300]}]}'):
            response = http.post("/v2/models/default/infer", content=body)
            assert response.status_code == 400 and set(response.json()) == {"error"}, response.text
        assert set(http.get("/models/" + "0" * 32).json()) == {"detail"}  # the rest of the API keeps its form
        assert http.get("/v2/nowhere").status_code == 403  # unknown routes are answered to the admin key only
    with httpx.Client(base_url=f"http://{server}", headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        assert http.get("/v2/nowhere").json() == {"error": "Not Found"}
        assert http.put("/v2/models/default/infer").status_code == 405
        assert set(http.put("/v2/models/default/infer").json()) == {"error"}
