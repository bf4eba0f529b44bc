#!/usr/bin/env bash
# Installs everything (see install.sh --test) and runs the whole test suite, one pytest-xdist
# worker per core (at most 4); each test file, and tests/browser as a whole, stays on one worker
# (tests/conftest.py), so module and browser fixtures are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 --dist loadgroup "$@"
