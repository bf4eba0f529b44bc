"""The web page."""

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="The web page is not installed; the API is at /docs.")
    return FileResponse(page)
