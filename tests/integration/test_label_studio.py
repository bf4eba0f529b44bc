"""This service as the ML backend of a real Label Studio (the `label-studio` package, in a virtual
environment of its own made by scripts/install.sh --test, on SQLite), driven by label-studio-sdk,
with ADGM_API_KEY set and scoped tokens: connected with an `infer` token, a project of MNIST-style
test digits gets predictions that are /classify's answers; annotations made, changed and deleted
arrive, through the webhook and its `label` token, as labels in the project's data set; connected
with a `label` token, Label Studio's training request starts a warm job."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from image_files import encode
from process_harness import Process, free_port, wait_for, wait_until_healthy
from store.db import make_engine, make_sessionmaker
from store.scopes import Scope
from store.tokens import TokenStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LS_ENV = REPO_ROOT / ".venv-label-studio" / "bin"
DRIVER = Path(__file__).with_name("label_studio_driver.py")
TOKEN = "5c1d0e2a9f8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"  # a legacy token, given to Label Studio at its first start
KEY = "ls-backend-key"
TASKS = 30


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """`label-studio start` on a free port, SQLite in a temporary directory; the first start runs
    Django's migrations (about two minutes on two shared cores)."""
    if not (LS_ENV / "label-studio").exists():
        pytest.fail("Label Studio is not installed in .venv-label-studio: run scripts/install.sh --test")
    directory = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ADGM_", "VIRTUAL_ENV"))}
    # The backend runs on 127.0.0.1: Label Studio's SSRF guards would refuse it (and its webhook).
    env.update(LABEL_STUDIO_BASE_DATA_DIR=str(directory / "data"), DJANGO_DB="sqlite", ML_BLOCK_LOCAL_IP="false",
               SSRF_PROTECTION_ENABLED="false", USE_DEFAULT_BANNED_SUBNETS="false")
    args = [str(LS_ENV / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(directory / "data"), "--username", "test@example.com", "--password", "test-password-1",
            "--user-token", TOKEN, "--enable-legacy-api-token", "--log-level", "WARNING"]
    started = time.monotonic()
    process = Process("label-studio", args, env, directory)
    url = f"http://127.0.0.1:{port}"

    wait_until_healthy(process, f"{url}/health", 600, interval=1)
    print(f"LABEL_STUDIO first start {time.monotonic() - started:.0f} s")
    yield url
    process.stop(timeout=20)


@pytest.fixture(scope="module")
def api(label_studio, tmp_path_factory, trained_state):
    """This service on a copy of the session's trained state, reading images from that Label
    Studio, with an API key; (its URL, an infer token, a label token)."""
    directory = tmp_path_factory.mktemp("ls-api")
    trained_state.copy_to(directory / "state")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
    env.update(PYTHONPATH=str(REPO_ROOT), ADGM_DATABASE_URL=f"sqlite:///{directory / 'state' / 'adgm.sqlite'}",
               ADGM_ARTIFACT_DIR=str(directory / "state" / "artifacts"), ADGM_MNIST_DIR="",
               ADGM_EMBEDDED_WORKERS="0", ADGM_API_KEY=KEY, ADGM_LABEL_STUDIO_URL=label_studio,
               ADGM_LABEL_STUDIO_API_KEY=TOKEN, ADGM_LABEL_STUDIO_USERNAME="label-studio")
    port = free_port()
    process = Process("api", [str(BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
                      env, directory)
    url = f"http://127.0.0.1:{port}"

    wait_until_healthy(process, f"{url}/healthz", 90)
    engine = make_engine(env["ADGM_DATABASE_URL"])
    tokens = TokenStore(make_sessionmaker(engine))
    infer, label = tokens.create(Scope.INFER, "label-studio")[1], tokens.create(Scope.LABEL, "label-studio-webhook")[1]
    engine.dispose()
    yield url, infer, label
    process.stop(timeout=10)


def drive(label_studio: str, *args: str) -> dict:
    result = subprocess.run([str(LS_ENV / "python"), str(DRIVER), label_studio, TOKEN, *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_label_studio_predicts_learns_labels_and_trains(label_studio, api, trained_state, test_digits, tmp_path):
    api, infer, label = api
    images, labels = test_digits
    for i in range(TASKS):
        (tmp_path / f"d{i:03d}_label{labels[i]}.png").write_bytes(encode(images[i]))
    project = drive(label_studio, "setup", f"{api}/label-studio", "label-studio", infer, label, str(tmp_path))
    assert len(project["tasks"]) == TASKS and project["backend_state"] == "CO"  # connected: health and setup passed

    # predictions: in Label Studio, for every task, naming /classify's class with its probability as score
    predictions = drive(label_studio, "predict", str(project["project"]))["predictions"]
    assert len(predictions) == TASKS
    pngs = {path.name: path.read_bytes() for path in tmp_path.glob("*.png")}
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {infer}"}, timeout=60) as http:
        answers = http.post("/classify", files=[("files", (name, png)) for name, png in sorted(pngs.items())]).json()
    served = {result["filename"]: result for result in answers["results"]}
    right = 0
    for task_id, prediction in predictions.items():
        name = re.search(r"d\d{3}_label\d\.png$", prediction["image"]).group(0)
        (region,) = prediction["result"]
        chosen = region["value"]["choices"][0]
        assert chosen == str(served[name]["label"]), (task_id, name)
        assert prediction["score"] == pytest.approx(max(served[name]["probabilities"]), abs=1e-6)
        assert prediction["model_version"] == trained_state.model_id
        right += chosen == name[-5]
    print(f"LABEL_STUDIO predictions right on {right}/{TASKS} tasks")
    assert right > TASKS // 2  # the small session model is right on about two thirds of the digits

    # annotations: one task of each digit first (the data set is made once every class has a label), then more
    task_of = {re.search(r"d(\d{3})_", prediction["image"]).group(1): int(task_id)
               for task_id, prediction in predictions.items()}
    order = sorted(task_of.values())
    first_of_class = {}
    for i in range(TASKS):
        first_of_class.setdefault(int(labels[i]), i)
    chosen = sorted(first_of_class.values()) + [i for i in range(TASKS) if i not in first_of_class.values()][:5]
    pairs = [f"{task_of[f'{i:03d}']}={labels[i]}" for i in chosen]
    made = drive(label_studio, "annotate", str(project["project"]), *pairs)["annotations"]
    expected = {order.index(task_of[f"{i:03d}"]): int(labels[i]) for i in chosen}
    # then one annotation changed and one deleted, among those beyond the first of each class
    changed, removed = made[-1], made[-2]
    new_class = (expected[order.index(changed["task"])] + 1) % 10
    drive(label_studio, "relabel", str(changed["annotation"]), str(new_class))
    drive(label_studio, "delete", str(removed["annotation"]))
    expected[order.index(changed["task"])] = new_class
    expected[order.index(removed["task"])] = None

    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {label}"}, timeout=30) as http:
        def dataset():
            found = [d for d in http.get("/datasets").json()["datasets"]
                     if d["name"] == f"Label Studio project {project['project']}"]
            labelled = sum(label is not None for label in expected.values())
            return found[0] if found and found[0]["n_labelled"] == labelled and found[0]["version"] >= 3 else None

        linked = wait_for(dataset, 60, "the annotations to arrive as labels")
        log = http.get(f"/datasets/{linked['id']}/labels", params={"limit": 1000}).json()
        newest = {}
        for entry in sorted(log["entries"], key=lambda e: e["version"]):
            newest[entry["index"]] = entry["label"]
        assert newest == expected
        assert linked["n_images"] == TASKS
        assert all(entry["author"].startswith("label-studio") for entry in log["entries"])

        # Label Studio's training request (to the webhook, with the connection's credentials) needs a
        # label token: an infer token predicts, but does not start training
        drive(label_studio, "auth", str(project["backend"]), f"{api}/label-studio", str(project["project"]),
              "label-studio", label)
        drive(label_studio, "train", str(project["backend"]))
        job = wait_for(lambda: next((j for j in http.get("/jobs").json()["jobs"] if j["dataset"] == linked["id"]), None),
                       60, "the job Label Studio asked for")
    assert job["status"] == "queued" and job["params"]["init_model"] == trained_state.model_id
    assert job["params"].get("use_all_labels") is True
