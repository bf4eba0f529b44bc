"""Dependencies shared by the routes, as `Annotated` aliases."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.inference import LoadedModel
from app.runtime import Runtime
from store.config import Settings
from store.ids import ID_PATTERN


async def get_runtime(request: Request) -> Runtime:  # coroutines: a sync dependency costs a thread hop
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
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


ModelQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="Model id; the newest model when omitted")]


def get_loaded_model(runtime: Runtime, model: str | None) -> LoadedModel:
    """The model named, else the newest (app.served_model), loaded; 404 or 503 without one."""
    return _found(runtime.served.get(model), model)


async def served_model(runtime: RuntimeDep, model: ModelQuery = None) -> LoadedModel:
    """`get_loaded_model`, answered on the event loop when the model is known and loaded (no thread
    hop: the common case), else from a thread (a database query, maybe a load)."""
    known, loaded = runtime.served.known(model)
    if not known:
        loaded = await run_in_threadpool(runtime.served.get, model)
    return _found(loaded, model)


def _found(loaded: LoadedModel | None, model: str | None) -> LoadedModel:
    if loaded is not None:
        return loaded
    if model is not None:
        raise model_not_found(model)
    raise HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="No trained model yet: start one with POST /train (for example {\"dataset\": \"digits5k\", "
        "\"epochs\": 10}) and try again when the job has succeeded.",
    )


LoadedModelDep = Annotated[LoadedModel, Depends(served_model)]
