"""The FastAPI application: `uvicorn app.main:app` (embedded mode unless ADGM_BROKER_URL is set)."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from app.api.access import document
from app.api.authentication import Authentication
from app.api.errors import install_error_handlers
from app.api.main import api_router
from app.api.routes.pages import STATIC_DIR
from app.core.body_limit import JSONBodyLimitErrors
from app.core.metrics import LatencyMiddleware
from app.runtime import Runtime
from store.config import Settings, get_settings

DESCRIPTION = (
    "Train the Auxiliary Deep Generative Model on data with few labels, then sample digits of a chosen "
    "class and classify uploaded images. With ADGM_API_KEY set, every route but the probes, the page, this "
    "description and the presets needs `Authorization: Bearer <key>`: that admin key, or a token of scope infer, "
    "label or admin made by `adgm token create`; each operation names the scope it needs."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = await run_in_threadpool(Runtime.start, settings)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.runtime.stop)

    app = FastAPI(
        title="adgm-serve", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
        form_limits={"max_files": settings.max_classify_files, "max_fields": 100},
    )
    app.add_middleware(Authentication, settings=settings)
    app.add_middleware(JSONBodyLimitErrors)
    app.add_middleware(LatencyMiddleware)
    install_error_handlers(app)
    app.include_router(api_router, max_body_size=settings.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    document_access(app, settings)
    return app


def document_access(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI document says what `Authentication` enforces (app.api.access): the security
    requirement, 401 and 403 of each operation, or none without ADGM_API_KEY, so that clients and
    schema-driven tests see the truth."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi


app = create_app()
