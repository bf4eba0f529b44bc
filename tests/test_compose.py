"""docker-compose.yml and the Dockerfile: no Docker engine runs here, so these check that the files
describe the topology that the integration tests run without Docker, with names the code reads."""

import re
from pathlib import Path

import pytest
import yaml

from store.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("redis", "postgres", "api", "worker", "worker-cpu")
APP_SERVICES = ("api", "worker", "worker-cpu")
WORKERS = ("worker", "worker-cpu")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_health_checks(compose):
    services = compose["services"]
    assert set(services) == set(SERVICES)
    for name in SERVICES:
        assert services[name]["healthcheck"]["test"], name
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert "--appendonly" in services["redis"]["command"]


def test_app_services_are_built_from_the_dockerfile_and_wait_for_their_dependencies(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"]["context"] == "."
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"},
                                         "postgres": {"condition": "service_healthy"}}
    assert compose["services"]["api"]["command"][:2] == ["uvicorn", "app.main:app"]
    assert "8000:8000" in compose["services"]["api"]["ports"]


def test_workers_take_the_gpu_queue_one_job_at_a_time(compose):
    for name in WORKERS:
        command = " ".join(compose["services"][name]["command"])
        assert command.startswith("celery -A worker.celery_app worker")
        assert "-Q gpu" in command and "-c 1" in command and "--pool=prefork" in command


def test_the_gpu_worker_reserves_an_nvidia_device_and_the_cpu_one_is_a_profile(compose):
    worker, cpu = compose["services"]["worker"], compose["services"]["worker-cpu"]
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert worker["environment"]["ADGM_DEVICE"] == "cuda"
    assert "profiles" not in worker
    assert cpu["profiles"] == ["cpu"] and cpu["environment"]["ADGM_DEVICE"] == "cpu"
    assert "deploy" not in cpu


def test_api_and_workers_share_the_artifact_volume_and_the_stores(compose):
    assert "artifacts" in compose["volumes"]
    environments = [compose["services"][name]["environment"] for name in APP_SERVICES]
    for name, environment in zip(APP_SERVICES, environments):
        assert f"artifacts:{environment['ADGM_ARTIFACT_DIR']}" in compose["services"][name]["volumes"]
        assert environment["ADGM_DATABASE_URL"].startswith("postgresql://") and "@postgres:" in environment["ADGM_DATABASE_URL"]
        assert environment["ADGM_BROKER_URL"].startswith("redis://redis:")
    shared = ("ADGM_DATABASE_URL", "ADGM_BROKER_URL", "ADGM_ARTIFACT_DIR", "ADGM_MNIST_DIR")
    assert len({tuple(environment[key] for key in shared) for environment in environments}) == 1


def test_every_variable_set_is_a_setting(compose):
    fields = {f"ADGM_{name.upper()}" for name in Settings.model_fields}
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert environment, name
        for key, value in environment.items():
            assert key in fields, f"{name} sets {key}, which no setting reads"
            if "${" not in str(value):
                Settings(_env_file=None, **{key[len("ADGM_"):].lower(): value})  # and its value is valid


def test_the_image_runs_as_an_unprivileged_user_and_installs_the_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:[\d.]+-slim", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    last_user = dockerfile.rindex("\nUSER ")
    assert "pip install -e ." in dockerfile[:last_user]
    for directory in ("adgm_core", "app", "worker"):
        assert f"COPY {directory} " in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and "var" in ignored


def test_every_setting_is_documented():
    documented = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`ADGM_{name.upper()}`" in documented, name
