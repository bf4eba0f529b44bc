"""Exception → HTTP answer: every error is JSON `{"detail": "<what went wrong>"}`, except on the Open
Inference Protocol's routes (/v2), where the protocol makes it `{"error": "<what went wrong>"}`."""

import json
import logging
import math
import re

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from adgm_core.cpu import NoNativeBf16
from adgm_core.data import DataError
from adgm_core.images import ImageError
from app.core.body_limit import too_large_detail
from app.model_cache import ModelUnavailable
from app.label_studio import LabelStudioError
from app.oip import ProtocolError
from adgm_core.data.uploads import UploadTooLarge
from app.services import IncompatibleModel, ModelNotFound
from store.jobs import JobFinished, JobNotFound, QueueFull
from store.labels import DatasetNotFound, LabelError

log = logging.getLogger(__name__)

IMAGE_ERROR_STATUS = {"unsupported": 415, "too_large": 413, "invalid": 422}


OIP_PREFIX = "/v2"


def _is_oip(request: Request) -> bool:
    return request.url.path == OIP_PREFIX or request.url.path.startswith(OIP_PREFIX + "/")


def error_response(request: Request, status_code: int, detail, headers: dict | None = None) -> JSONResponse:
    """The API's error answer: `{"detail": …}`, or `{"error": …}` on the inference protocol's routes."""
    if _is_oip(request):
        text = detail if isinstance(detail, str) else json.dumps(detail)
        return JSONResponse({"error": text}, status_code=status_code, headers=headers)
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _documented_methods(request: Request) -> str:
    """Every method the API documents for this path (Starlette's 405 names only one route's)."""
    methods = set()
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), request.url.path):
            methods.update(method.upper() for method in operations)
    return ", ".join(sorted(methods))


async def _http_error(request: Request, error: StarletteHTTPException):
    if error.status_code == 413 and error.detail == "Content Too Large":  # Starlette's body limit
        return error_response(request, 413, too_large_detail(request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)))
    if error.status_code == 405 and (allowed := _documented_methods(request)):
        error = StarletteHTTPException(405, detail=f"Method not allowed; use {allowed}.", headers={"Allow": allowed})
    if _is_oip(request):
        return error_response(request, error.status_code, error.detail, error.headers)
    return await http_exception_handler(request, error)


def _json_safe(value):
    """JSON has no NaN or Infinity: a field error that quotes such an input quotes it as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


async def _invalid_request(request: Request, error: RequestValidationError):
    """FastAPI's 422 list of field errors; `{"learning_rate": NaN}` must get it too, not a 500. The
    protocol's routes answer 400 with the list as text."""
    if _is_oip(request):
        return error_response(request, 400, _json_safe(jsonable_encoder(error.errors())))
    return JSONResponse({"detail": _json_safe(jsonable_encoder(error.errors()))}, status_code=422)


async def _server_error(request: Request, error: Exception):
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(request, status.HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error; it has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(DataError, lambda request, error: error_response(request, 422, str(error)))
    app.add_exception_handler(NoNativeBf16, lambda request, error: error_response(request, 422, str(error)))
    app.add_exception_handler(UploadTooLarge, lambda request, error: error_response(request, 413, str(error)))
    app.add_exception_handler(LabelError, lambda request, error: error_response(request, 422, str(error)))
    app.add_exception_handler(DatasetNotFound, lambda request, error: error_response(request, 404, str(error)))
    app.add_exception_handler(IncompatibleModel, lambda request, error: error_response(request, 409, str(error)))
    app.add_exception_handler(ModelNotFound, lambda request, error: error_response(request, 404, f"Model {error} does not exist."))
    app.add_exception_handler(ImageError, lambda request, error: error_response(request, IMAGE_ERROR_STATUS.get(error.kind, 422), str(error)))
    app.add_exception_handler(ModelUnavailable, lambda request, error: error_response(request, 503, str(error)))
    app.add_exception_handler(JobNotFound, lambda request, error: error_response(request, 404, f"Job {error} does not exist."))
    app.add_exception_handler(JobFinished, lambda request, error: error_response(request, 409, str(error)))
    app.add_exception_handler(QueueFull, lambda request, error: error_response(request, 429, str(error)))
    app.add_exception_handler(ProtocolError, lambda request, error: error_response(request, error.status, str(error)))
    app.add_exception_handler(LabelStudioError, lambda request, error: error_response(request, 422, str(error)))
    app.add_exception_handler(Exception, _server_error)
