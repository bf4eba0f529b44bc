"""Trained models: list, read, delete. The newest one is the default for inference."""

import shutil

from fastapi import APIRouter, Response, status

from app import crud
from app.api.deps import ApiKeyDep, ModelId, RuntimeDep, SessionDep, model_not_found
from app.api.responses import UNAUTHORIZED, error
from app.models import TrainedModel
from app.schemas import ModelPublic, ModelsPublic

router = APIRouter(prefix="/models", tags=["models"])

NOT_FOUND = {404: error("No model with this id")}


@router.get("")
def list_models(session: SessionDep) -> ModelsPublic:
    models = crud.read_models(session)
    default_id = models[0].id if models else None
    return ModelsPublic(models=[crud.model_public(model, default_id) for model in models], default=default_id)


@router.get("/{model_id}", responses=NOT_FOUND)
def read_model(model_id: ModelId, session: SessionDep) -> ModelPublic:
    model = session.get(TrainedModel, model_id)
    if model is None:
        raise model_not_found(model_id)
    default = crud.default_model(session)
    return crud.model_public(model, default.id if default else None)


@router.delete(
    "/{model_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[ApiKeyDep],
    responses={**UNAUTHORIZED, **NOT_FOUND},
)
def delete_model(model_id: ModelId, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Removes the record first (no request picks the model any more), then its files."""
    if not crud.delete_model(session, model_id):
        raise model_not_found(model_id)
    runtime.models.evict(model_id)
    directory = runtime.settings.models_dir / model_id
    trash = directory.with_name(f".deleted-{model_id}")
    if directory.exists():
        directory.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
