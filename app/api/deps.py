"""Dependencies shared by the routes, as `Annotated` aliases."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from sqlalchemy.orm import Session

from app.inference import LoadedModel
from app.runtime import Runtime
from app.served_model import served_model
from store.config import Settings
from store.ids import ID_PATTERN


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

JobId = Annotated[str, Path(pattern=ID_PATTERN, description="32 lowercase hex characters")]
ModelId = Annotated[str, Path(pattern=ID_PATTERN, description="32 lowercase hex characters")]


def model_not_found(model_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Model {model_id} does not exist.")


def get_loaded_model(
    runtime: RuntimeDep,
    model: Annotated[str | None, Query(pattern=ID_PATTERN, description="Model id; the newest model when omitted")] = None,
) -> LoadedModel:
    """The model named, else the newest (app.served_model: checked against the job store on every
    request, loaded once)."""
    loaded = served_model(runtime, model)
    if loaded is not None:
        return loaded
    if model is not None:
        raise model_not_found(model)
    raise HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="No trained model yet: start one with POST /train (for example {\"dataset\": \"digits5k\", "
        "\"epochs\": 10}) and try again when the job has succeeded.",
    )


LoadedModelDep = Annotated[LoadedModel, Depends(get_loaded_model)]
