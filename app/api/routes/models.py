"""Trained models: list, read, delete. The newest one is the default for inference."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from app import crud, services
from app.api.deps import ModelId, RuntimeDep, SessionDep, model_not_found
from app.api.responses import error
from app.schemas import ModelPublic, ModelsPublic

router = APIRouter(prefix="/models", tags=["models"])

NOT_FOUND = {404: error("No model with this id")}


@router.get("")
def list_models(session: SessionDep) -> ModelsPublic:
    models, default_id = crud.read_models(session)
    return ModelsPublic(models=models, default=default_id)


@router.get("/{model_id}", responses=NOT_FOUND)
def read_model(model_id: ModelId, session: SessionDep) -> ModelPublic:
    model = crud.read_model(session, model_id)
    if model is None:
        raise model_not_found(model_id)
    return model


@router.get(
    "/{model_id}/export", response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The ONNX file"}, **NOT_FOUND,
               503: error("The model's files are corrupt")},
)
def export_model(
    model_id: ModelId, runtime: RuntimeDep, session: SessionDep,
    format: Annotated[Literal["onnx"], Query(description="File format (ONNX only)")] = "onnx",
) -> Response:
    """The classifier q(y|x) (averaged over the same fixed draws of a as /classify) as an ONNX file:
    input `image` uint8 [N, H, W], output `probabilities` float32 [N, K]."""
    data = services.export_model(runtime, session, model_id)
    if data is None:
        raise model_not_found(model_id)
    filename = f"adgm-{model_id}.{format}"
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.delete(
    "/{model_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND,
)
def delete_model(model_id: ModelId, runtime: RuntimeDep, session: SessionDep) -> Response:
    if not services.delete_model(runtime, session, model_id):
        raise model_not_found(model_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
