#!/usr/bin/env bash
# Installs adgm-serve into .venv. With --test it also installs the test tools and, as root on a
# Debian machine, what the tests start as real processes: redis-server and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
with_test=0
[ "${1:-}" = "--test" ] && with_test=1

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# pyproject.toml keeps an honest range; the pin picks the releases this machine kind has on disk.
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  # Label Studio (with label-studio-sdk) for tests/integration/test_label_studio.py, in a virtual
  # environment of its own: its pins (Django, pydantic, …) must not touch ours.
  [ -x .venv-label-studio/bin/python ] || "${PYTHON:-python3}" -m venv .venv-label-studio
  .venv-label-studio/bin/python -m pip install -q --upgrade pip
  .venv-label-studio/bin/python -m pip install -q "label-studio==1.23.2"
  missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v wrk >/dev/null || missing+=(wrk)  # bench/serving.py's load generator
  # PostgreSQL for the store's tests: the local server if one answers, else a throwaway one (initdb).
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "install.sh: please install ${missing[*]} (Debian packages) for the integration and browser tests" >&2
      exit 1
    fi
  fi
else
  .venv/bin/python -m pip install -q -e .
fi
