"""The API SIGKILLed while it decodes a big upload in the background leaves nothing half-written.

A real API under uvicorn receives a zip of 4,000 digits, more than ADGM_UPLOAD_BACKGROUND_IMAGES,
so it answers 202 and decodes the zip in a thread. When GET /uploads/{id} shows images decoded,
the API and its process group are SIGKILLed. After a restart the upload is failed with a reason
once its heartbeat is stale, and there is no data-set file, staging file, data-set row or label
row of it. The same zip sent again is then stored whole.
"""

import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from adgm_core.data import load_builtin
from store.tables import Dataset, LabelEntry
from process_harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def digits_zip(n_images: int) -> bytes:
    train, _test = load_builtin("digits5k")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.md", "digits")
        for i in range(n_images):
            png = io.BytesIO()
            Image.fromarray(train.images[i]).save(png, "PNG")
            folder = str(train.labels[i]) if i < 100 else "unlabelled"
            archive.writestr(f"{folder}/{i}.png", png.getvalue())
    return buffer.getvalue()


def count(reader, table) -> int:
    with reader.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_a_kill_while_an_upload_is_decoded_leaves_no_file_and_no_row(api, service_env, job_store_reader):
    env = {**service_env, "ADGM_EMBEDDED_WORKERS": "0", "ADGM_UPLOAD_BACKGROUND_IMAGES": "100"}
    datasets_dir = Path(env["ADGM_ARTIFACT_DIR"]) / "datasets"
    content = digits_zip(4000)
    api.start(env)
    with api.client() as client:
        response = client.post("/datasets", files={"file": ("digits.zip", content, "application/zip")})
        assert response.status_code == 202, response.text
        url = response.json()["url"]
        seen = wait_for(lambda: (body := client.get(url).json())["n_done"] > 0 and body, 60, "decoding to start")
    assert seen["status"] == "running" and seen["n_done"] < 4000, seen
    api.process.kill_group()  # SIGKILL mid-decoding
    assert not list(datasets_dir.glob("*.npz")), "no data-set file before the upload succeeded"

    api.start(env)
    with api.client() as client:
        failed = wait_for(lambda: (body := client.get(url).json())["status"] == "failed" and body, 30,
                          "the upload of the killed API to be failed")
        assert "send it again" in failed["error"] and failed["dataset"] is None
        assert sorted(path.name for path in datasets_dir.iterdir()) == []
        assert count(job_store_reader, Dataset) == 0 and count(job_store_reader, LabelEntry) == 0
        assert [d["id"] for d in client.get("/datasets").json()["datasets"]] == ["digits5k"]

        again = client.post("/datasets", files={"file": ("digits.zip", content, "application/zip")}).json()
        stored = wait_for(lambda: (body := client.get(again["url"]).json())["status"] != "running"
                          and body["status"] != "queued" and body, 120, "the upload sent again")
        assert stored["status"] == "succeeded", stored
        assert (stored["dataset"]["n_images"], stored["dataset"]["n_labelled"]) == (4000, 100)
    assert sorted(path.name for path in datasets_dir.iterdir()) == [f"{again['id']}.npz"]
    with np.load(datasets_dir / f"{again['id']}.npz") as npz:
        assert npz["images"].shape == (4000, 28, 28)
