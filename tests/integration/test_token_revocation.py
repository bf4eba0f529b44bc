"""A token is checked against the job store on every request, so what `adgm token` does holds in
every API process at once: two uvicorn processes on one PostgreSQL store, tokens made, revoked and
expired with the real `adgm` script, each process refusing from its very next request."""

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from process_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BIN = Path(sys.executable).parent
KEY = "two-process-admin-key"
LIFETIME = 15  # seconds of the token that expires


def adgm(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "adgm"), *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_a_token_revoked_or_expired_is_refused_by_every_process_at_its_next_request(
        service_env, postgres_url, start_api):
    env = {**service_env, "ADGM_DATABASE_URL": postgres_url, "ADGM_API_KEY": KEY, "ADGM_EMBEDDED_WORKERS": "0"}
    first, _ = start_api(env, name="api-1")
    second, _ = start_api(env, name="api-2", port=free_port())
    token = adgm(env, "token", "create", "--scope", "label", "--name", "shared").stdout.strip()
    short = adgm(env, "token", "create", "--scope", "infer", "--name", "short", "--expires", f"{LIFETIME}s").stdout.strip()
    created = time.monotonic()
    clients = [httpx.Client(base_url=url, timeout=30) for url in (first, second)]
    try:
        for _ in range(3):  # both processes have seen both tokens work, several times
            for client in clients:
                assert client.get("/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
                assert client.get("/models", headers={"Authorization": f"Bearer {short}"}).status_code == 200
        # scope holds in both: an infer token may not read the jobs
        for client in clients:
            assert client.get("/jobs", headers={"Authorization": f"Bearer {short}"}).status_code == 403

        assert "revoked token 'shared'" in adgm(env, "token", "revoke", "shared").stdout
        for client in clients:
            answer = client.get("/jobs", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, (client.base_url, answer.text)
            assert answer.json()["detail"].startswith("Revoked API key: token 'shared' was revoked at")
            assert token not in answer.text

        time.sleep(max(0.0, LIFETIME + 0.5 - (time.monotonic() - created)))
        for client in clients:
            answer = client.get("/models", headers={"Authorization": f"Bearer {short}"})
            assert answer.status_code == 401 and answer.json()["detail"].startswith("Expired API key: token 'short'")
            assert client.get("/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        listed = adgm(env, "token", "list").stdout
        assert [line.split()[:3] for line in listed.splitlines()[1:]] == [["shared", "label", "revoked"],
                                                                          ["short", "infer", "expired"]]
    finally:
        for client in clients:
            client.close()
