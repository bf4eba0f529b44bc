"""Uploads decoded in the background: their state and progress, and the data set they made."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from app import services
from app.api.deps import RuntimeDep, SessionDep
from app.api.responses import error
from app.schemas import UploadPublic
from store.ids import ID_PATTERN

router = APIRouter(prefix="/uploads", tags=["datasets"])

UploadId = Annotated[str, Path(pattern=ID_PATTERN, description="32 lowercase hex characters")]


@router.get("/{upload_id}", responses={404: error("No upload with this id")})
def read_upload(upload_id: UploadId, runtime: RuntimeDep, session: SessionDep) -> UploadPublic:
    """An upload that POST /datasets answered with 202: queued, running (`n_done` of `n_images`
    decoded), succeeded (with its `dataset`, whose id is the upload's) or failed (with the `error`
    a 422 would have given)."""
    upload = services.upload_status(runtime, session, upload_id)
    if upload is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Upload {upload_id} does not exist.")
    return upload
