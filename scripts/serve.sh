#!/usr/bin/env bash
# Installs adgm-serve and runs it in the embedded mode: API, job store (SQLite) and a local
# training worker in one command, on http://127.0.0.1:8000 (override with HOST / PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/uvicorn app.main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
