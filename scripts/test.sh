#!/usr/bin/env bash
# Installs everything (see install.sh --test) and runs the whole test suite, one pytest-xdist
# worker per core (at most 4); each test file stays on one worker, so its module fixtures are
# built once (a session fixture is built once per worker that needs it). The 25 slowest tests are
# listed at the end, so that a run on CI shows where its time went.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile --durations=25 "$@"
