"""Liveness, readiness and Prometheus metrics."""

import uuid

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api.deps import RuntimeDep
from app.runtime import Runtime
from app.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """The process is up."""
    return Health()


def _check(probe) -> str:
    try:
        return probe()
    except Exception as error:  # readiness reports failures, it never raises them
        return f"error: {type(error).__name__}: {error}"[:300]


def _database(runtime: Runtime) -> str:
    with runtime.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return "ok"


def _artifacts(runtime: Runtime) -> str:
    probe = runtime.settings.artifact_dir / f".readyz-{uuid.uuid4().hex}"
    probe.write_bytes(b"ok")
    probe.unlink()
    return "ok"


@router.get("/readyz", responses={503: {"model": Readiness, "description": "A dependency is not ready"}})
def readyz(runtime: RuntimeDep) -> Readiness:
    """Database, broker (when configured) and artifact store."""
    readiness = Readiness(
        database=_check(lambda: _database(runtime)),
        broker=_check(runtime.dispatcher.check),
        artifacts=_check(lambda: _artifacts(runtime)),
    )
    if all(value in ("ok", "not configured") for value in readiness.model_dump().values()):
        return readiness
    return JSONResponse(readiness.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
