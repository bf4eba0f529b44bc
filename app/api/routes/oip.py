"""The Open Inference Protocol v2 over REST, for KServe, Triton and Seldon clients (`tritonclient.http`).

`{name}` is a model id or `default` (the newest model). Every error on these routes is
`{"error": "…"}`, as the protocol says (app/api/errors.py). Inference goes through the same batched
path as POST /classify; with ADGM_API_KEY set every route here but the two health probes needs a
token of scope infer or more (app/api/access.py).
"""

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.api.deps import RuntimeDep, SettingsDep
from app.inference import LoadedModel
from app.oip import (EXTENSIONS, HEADER_LENGTH, INFERENCE_REQUEST_SCHEMA, InferenceResponse, ModelMetadata,
                     ModelReady, ProtocolError, ProtocolErrorBody, ServerLive, ServerMetadata, ServerReady,
                     encode_response, model_metadata, parse_request)
from store.ids import ID_PATTERN

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

DEFAULT = "default"
MODEL_ERRORS = {
    404: {"model": ProtocolErrorBody, "description": "No model of that name"},
    503: {"model": ProtocolErrorBody, "description": "No trained model yet, or the model's files are corrupt"},
}
INFER_ERRORS = {
    **MODEL_ERRORS,
    400: {"model": ProtocolErrorBody, "description": "A request the model cannot take (names the problem)"},
    413: {"model": ProtocolErrorBody, "description": "Body larger than the limit"},
}


def _named_model(name: str, runtime: RuntimeDep) -> tuple[str, LoadedModel]:
    loaded = None
    if name == DEFAULT:
        loaded = runtime.served.get(None)
        if loaded is None:
            raise ProtocolError("No trained model yet: start one with POST /train.", status=503)
    elif re.fullmatch(ID_PATTERN, name):
        loaded = runtime.served.get(name)
    if loaded is None:
        raise ProtocolError(f"Unknown model {name!r}: name a model id (GET /models) or '{DEFAULT}'.", status=404)
    return name, loaded


NamedModel = Annotated[tuple[str, LoadedModel], Depends(_named_model)]


async def _body(request: Request) -> bytes:
    return await request.body()


@router.get("/health/live")
def server_live() -> ServerLive:
    """The process is up."""
    return ServerLive(live=True)


@router.get("/health/ready")
def server_ready() -> ServerReady:
    """The server answers inference requests (a model may still be training)."""
    return ServerReady(ready=True)


@router.get("")
def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="adgm-serve", version="0.1.0", extensions=EXTENSIONS)


@router.get("/models/{name}", responses=MODEL_ERRORS)
def read_model_metadata(model: NamedModel) -> ModelMetadata:
    """Inputs and outputs with their datatypes and shapes (-1: any batch size)."""
    name, loaded = model
    return model_metadata(name, loaded.id, loaded.image_shape, loaded.n_classes)


@router.get("/models/{name}/ready", responses=MODEL_ERRORS)
def model_ready(model: NamedModel) -> ModelReady:
    """200 when the model is loaded and answers; 404 or 503 otherwise."""
    return ModelReady(name=model[0], ready=True)


@router.post(
    "/models/{name}/infer", response_class=Response,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": INFERENCE_REQUEST_SCHEMA}}}},
    responses={200: {"model": InferenceResponse, "content": {"application/octet-stream": {}},
                     "description": "JSON, or a JSON header and binary outputs"}, **INFER_ERRORS},
)
def infer(model: NamedModel, settings: SettingsDep, request: Request, body: Annotated[bytes, Depends(_body)]) -> Response:
    """Class probabilities and novelty of a batch of images (input `image`, see docs/api.md)."""
    name, loaded = model
    parsed = parse_request(body, request.headers.get(HEADER_LENGTH), loaded.image_shape, settings.max_infer_images)
    probabilities, novelty = loaded.classify(parsed.images, novelty=parsed.wants("novelty"))
    content, headers = encode_response(parsed, name, loaded.id, probabilities, novelty)
    return Response(content, headers=headers)
