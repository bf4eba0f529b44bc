#!/usr/bin/env bash
# Installs everything (see install.sh --test) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
exec .venv/bin/python -m pytest "$@"
