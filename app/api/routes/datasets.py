"""Data sets: the built-in ones and `.npz` uploads kept in the artifact store."""

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status

from app import services
from app.api.deps import ApiKeyDep, RuntimeDep, SessionDep, SettingsDep
from app.api.responses import BODY_ERRORS, UNAUTHORIZED, unprocessable
from app.schemas import DatasetPublic, DatasetsPublic

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post(
    "", status_code=status.HTTP_201_CREATED, dependencies=[ApiKeyDep],
    responses={**UNAUTHORIZED, **BODY_ERRORS, **unprocessable("Not a valid data set (the detail says why)")},
)
def upload_dataset(
    file: Annotated[UploadFile, File(description=".npz with images (uint8 N×H×W or N×D) and labels (−1 = unlabelled)")],
    runtime: RuntimeDep,
    session: SessionDep,
    name: Annotated[str | None, Form(max_length=100)] = None,
) -> DatasetPublic:
    """Upload a data set; it is checked completely before it is stored."""
    return services.upload_dataset(runtime, session, file.file, name, file.filename)


@router.get("")
def list_datasets(settings: SettingsDep, session: SessionDep) -> DatasetsPublic:
    """Built-in data sets (those available on this server) and uploads, newest upload first."""
    return DatasetsPublic(datasets=services.list_datasets(settings, session))
