"""Data flows one way: `worker/` never loads `app/` or FastAPI, `app/` never loads `worker/`, and
`store/` and `adgm_core/` load neither (each checked in a fresh interpreter)."""

import json
import subprocess
import sys

import pytest


def loaded_after(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(result.stdout)}


@pytest.mark.parametrize("module", ["worker.training", "worker.embedded", "worker.celery_app"])
def test_the_worker_loads_neither_the_api_nor_fastapi(module):
    loaded = loaded_after(module)
    assert "app" not in loaded and "fastapi" not in loaded and "starlette" not in loaded


def test_the_api_does_not_load_the_worker():
    assert "worker" not in loaded_after("app.main")


@pytest.mark.parametrize("module", ["store.jobs", "store.schema", "store.artifacts", "store.queue", "store.tokens", "store.cli",
                                    "adgm_core.presets"])
def test_the_shared_ground_loads_neither_side(module):
    loaded = loaded_after(module)
    assert "app" not in loaded and "worker" not in loaded and "fastapi" not in loaded


def test_the_api_starts_without_torch():
    """The API serves in numpy (adgm_core.numpy_predictor); torch, hundreds of MB, is imported only by
    the route that needs it (the ONNX export): docs/results.md, issue 18."""
    loaded = loaded_after("app.main")
    assert "torch" not in loaded
    assert "typer" not in loaded  # the command lines' library: store.schema_cli, store.cli
