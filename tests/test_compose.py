"""docker-compose.yml and the Dockerfile, without an engine: the topology the integration tests run
without Docker, with names the code reads, and the two files agreeing on paths, ports, the user and
the base images. scripts/compose-check.sh builds and runs them on a real engine (docs/reliability.md)."""

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from app.main import create_app
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


def test_variables_compose_interpolates_are_documented():
    """`${ADGM_…}` in the compose file are read by Compose from the user's shell: each is a setting
    passed on under its own name, or (ADGM_MNIST_HOST_DIR) a host path the README explains."""
    text = (ROOT / "docker-compose.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    interpolated = set(re.findall(r"\$\{(ADGM_[A-Z_]+)", text))
    assert interpolated == {"ADGM_API_KEY", "ADGM_METRICS_TOKEN", "ADGM_MNIST_HOST_DIR"}
    for name in interpolated:
        assert f"`{name}`" in readme or f"${name}" in readme, name


def test_every_variable_set_is_a_setting(compose):
    fields = {f"ADGM_{name.upper()}" for name in Settings.model_fields}
    for name in APP_SERVICES:
        assert compose["services"][name]["environment"], name
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if not key.startswith("ADGM_"):
                continue  # POSTGRES_USER & co. are the postgres image's
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


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _dockerfile_env(dockerfile: str) -> dict[str, str]:
    """ENV assignments (the `ENV A=1 \\ B=2` form the Dockerfile uses)."""
    environment = {}
    for block in re.findall(r"^ENV (.+?)(?<!\\)$", dockerfile, re.MULTILINE | re.DOTALL):
        for word in shlex.split(block.replace("\\\n", " ")):
            key, _, value = word.partition("=")
            environment[key] = value
    return environment


def _route_paths() -> set[str]:
    return set(create_app(Settings(_env_file=None)).openapi()["paths"])


def _volume_target(volume: str) -> str:
    """`source:target[:mode]` → target (the source may hold `${VAR:-default}`)."""
    parts = volume.rsplit(":", 2)
    return parts[-2] if parts[-1] in ("ro", "rw") else parts[-1]


def test_the_api_health_check_asks_a_route_on_the_port_uvicorn_listens_on(compose):
    api = compose["services"]["api"]
    [url] = re.findall(r"https?://[^'\" ]+", " ".join(api["healthcheck"]["test"]))
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost")
    assert parts.path in _route_paths(), f"the health check asks {parts.path}, which no route serves"
    command = api["command"]
    port = int(command[command.index("--port") + 1])
    assert parts.port == port
    assert [f"{port}:{port}"] == [str(p) for p in api["ports"]]


def test_the_worker_health_checks_ping_the_worker_they_run(compose):
    for name in WORKERS:
        service = compose["services"][name]
        check = " ".join(service["healthcheck"]["test"])
        app = service["command"][service["command"].index("-A") + 1]
        assert f"celery -A {app} inspect ping" in check
        assert "--destination celery@$$HOSTNAME" in check or "--destination celery@$HOSTNAME" in check
        assert "-n" not in service["command"], "a custom node name would not answer celery@$HOSTNAME"


def test_dockerfile_and_compose_agree_on_the_port():
    dockerfile = _dockerfile()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    [exposed] = re.findall(r"^EXPOSE (\d+)$", dockerfile, re.MULTILINE)
    [cmd] = re.findall(r"^CMD (\[.+\])$", dockerfile, re.MULTILINE)
    cmd = yaml.safe_load(cmd)
    api_command = compose["services"]["api"]["command"]
    assert cmd == api_command, "the image's default command is the API's"
    assert api_command[api_command.index("--port") + 1] == exposed


def test_dockerfile_and_compose_agree_on_the_paths_and_the_user(compose):
    dockerfile = _dockerfile()
    environment = _dockerfile_env(dockerfile)
    [user] = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert re.search(rf"^RUN useradd .*--uid \d+ {user}$", dockerfile, re.MULTILINE)
    [made] = re.findall(r"^RUN mkdir -p (.+?) && chown -R (\S+) (\S+)$", dockerfile, re.MULTILINE)
    directories, owner, owned = made[0].split(), made[1], made[2]
    assert owner == f"{user}:{user}"
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert "user" not in service, f"{name} overrides the image's user"
        service_env = service["environment"]
        assert service_env["ADGM_ARTIFACT_DIR"] == environment["ADGM_ARTIFACT_DIR"]
        targets = {_volume_target(volume): volume for volume in service["volumes"]}
        for variable in ("ADGM_ARTIFACT_DIR", "ADGM_MNIST_DIR"):
            path = service_env[variable]
            assert path in targets, f"{name}: {variable}={path} is no volume"
            assert path in directories and path.startswith(owned + "/"), \
                f"{path} is not made in the image and owned by {user}: a fresh named volume would be root's"
        assert targets[service_env["ADGM_MNIST_DIR"]].endswith(":ro")
    assert environment["ADGM_DATABASE_URL"].startswith(f"sqlite:///{owned}/"), "without compose, state is in /data too"


def test_pip_gets_a_ca_bundle_only_as_a_build_secret():
    """Behind a TLS-inspecting proxy the build takes the CA bundle as a BuildKit secret: every pip
    install mounts it, PIP_CERT is a build argument without a default (never an ENV of the image)."""
    dockerfile = _dockerfile()
    installs = re.findall(r"^RUN (.*pip install.*)$", dockerfile, re.MULTILINE)
    assert len(installs) == 2
    for line in installs:
        assert line.startswith("--mount=type=secret,id=pip-cert "), line
    assert re.search(r"^ARG PIP_CERT$", dockerfile, re.MULTILINE)
    assert "PIP_CERT" not in _dockerfile_env(dockerfile)
    assert re.search(r'--index-url "\$\{TORCH_INDEX_URL\}"', dockerfile), "compose-check.sh reads torch's requirements there"


def test_every_base_image_has_a_stand_in_that_compose_check_builds(compose):
    """Where Docker Hub cannot be reached, scripts/compose-check.sh builds each base image from
    Debian packages: the images it builds are exactly those the two files name."""
    dockerfile = _dockerfile()
    [base] = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    pulled = {service["image"] for service in compose["services"].values() if "build" not in service}
    script = (ROOT / "scripts" / "compose-check.sh").read_text()
    [table] = re.findall(r"^declare -A standin_dockerfile=\((.+)\)$", script, re.MULTILINE)
    standins = dict(re.findall(r"\[(\S+?)\]=(\S+)", table))
    assert set(standins) == pulled | {base}
    for image, dockerfile_name in standins.items():
        text = (ROOT / "scripts" / "compose-standins" / dockerfile_name).read_text()
        assert f"Stand-in for {image}," in text
        assert re.search(r'^LABEL org\.adgm-serve\.standin="[^"]+"$', text, re.MULTILINE), "the check prints this label"
        for copied in re.findall(r"^COPY (\S+) ", text, re.MULTILINE):
            assert (ROOT / "scripts" / "compose-standins" / copied).is_file()
