"""Promise 6, the part a test can hold without timing anything: under concurrent load from a
second client (32 and 128 connections, POST /classify, GET /sample and GET /jobs/{id} mixed), and
while the embedded worker trains, every request is answered, correctly, with no error.

The figures (throughput, p50/p99, peak memory, latency while training against idle) come from
bench/serving.py and are written in docs/reliability.md; tests never assert timings.
"""

import shutil
import sys

import httpx
import pytest

from fault_harness import REPO_ROOT, SMALL_JOB
from process_harness import wait_for

sys.path.insert(0, str(REPO_ROOT))
from bench.load import run_httpx  # noqa: E402
from bench.serving import calls  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECONDS = 4


def test_mixed_load_and_training_alongside_serve_every_request(api, service_env, trained_state):
    env = {**service_env, "ADGM_EMBEDDED_WORKERS": "1"}
    shutil.copy(trained_state.directory / "adgm.sqlite", env["ADGM_DATABASE_URL"].removeprefix("sqlite:///"))
    shutil.copytree(trained_state.directory / "artifacts", env["ADGM_ARTIFACT_DIR"])
    api.start(env)
    routes = calls(trained_state.job_id)
    mix = [routes["classify"], routes["sample"], routes["job"]]

    served = {}
    for connections in (32, 128):
        result, failures = run_httpx(api.url, mix, connections, SECONDS)
        assert failures == [], failures[:5]
        assert result.requests >= len(mix)
        served[connections] = result.requests

    with httpx.Client(base_url=api.url, timeout=30) as client:
        job = client.post("/train", json={**SMALL_JOB, "epochs": 200}).json()
        wait_for(lambda: client.get(f"/jobs/{job['id']}").json()["history"], 120, "the background job to train")
        result, failures = run_httpx(api.url, [routes["classify"]], 32, SECONDS)
        assert failures == [], failures[:5]
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "running", "training went on meanwhile"
        assert client.post(f"/jobs/{job['id']}/cancel").status_code == 202
        final = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").json())["status"] != "running" and j, 60,
                         "the background job to stop")
        assert final["status"] == "cancelled"
    print("RELIABILITY load", {"served_c32": served[32], "served_c128": served[128],
                               "served_while_training_c32": result.requests, "errors": 0})
