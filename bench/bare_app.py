"""The service's app plus two bare routes, for the serving benchmark only (never in production).

`POST /bench/bare` accepts the same multipart upload as POST /classify (same body limit,
authentication and thread pool; it reads the files) and answers a constant; `GET /bench/bare` answers
a constant PNG grid of 16 digits' size, as GET /sample?n=16 does. Their throughput is the floor
that classification and sampling are compared against.

    uvicorn --factory bare_app:create_app --app-dir bench
"""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Response, UploadFile

from adgm_core.images import png_grid
from store.config import get_settings
from app.main import create_app as create_service_app

CONSTANT_PNG = png_grid(np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8))

router = APIRouter(prefix="/bench", tags=["bench"])


@router.post("/bare")  # not in app.api.access's table: admin only when ADGM_API_KEY is set
def bare_upload(files: Annotated[list[UploadFile], File()]) -> dict:
    for upload in files:
        upload.file.read()
    return {"model_id": "bare", "results": []}


@router.get("/bare", response_class=Response)
def bare_png() -> Response:
    return Response(CONSTANT_PNG, media_type="image/png", headers={"X-Model-Id": "bare"})


def create_app():
    settings = get_settings()
    app = create_service_app(settings)
    app.include_router(router, max_body_size=settings.max_upload_bytes)
    return app
