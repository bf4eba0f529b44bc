"""Inference with a trained model: conditional samples, classification and style analogies."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, HTTPException, Query, Response, UploadFile, status

from adgm_core.images import ImageError, decode_upload, png_grid, to_model_input
from app.api.deps import LoadedModelDep, SettingsDep
from app.api.responses import BODY_ERRORS, error, unprocessable
from store.config import Settings
from app.schemas import Classification, ClassifyPublic

router = APIRouter(tags=["inference"])

PNG = {200: {"content": {"image/png": {}}, "description": "PNG image"}}
NO_MODEL = {
    404: error("The model named does not exist"),
    503: error("No trained model yet, or the model's files are corrupt"),
}
IMAGE_ERRORS = {
    **BODY_ERRORS,
    413: error("Body or image too large"),
    415: error("Not a PNG or JPEG image"),
    **unprocessable("Unreadable image or invalid parameter"),
}
Seed = Annotated[int, Query(ge=0, le=2**31 - 1, description="Same seed, same pixels")]


def _model_input(upload: UploadFile, settings: Settings, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return to_model_input(decode_upload(upload.file.read(), settings.max_image_pixels), shape)
    except ImageError as problem:  # the handler answers 413, 415 or 422 by its kind
        raise ImageError(problem.kind, f"{upload.filename or 'upload'}: {problem}") from problem


def _class_index(model, label: str) -> int:
    """A class by name first, then by index."""
    names = model.class_names
    if label in names:
        return names.index(label)
    if label.isdigit() and int(label) < model.n_classes:
        return int(label)
    shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
    problem = f"label {label} is out of range" if label.lstrip("-").isdigit() else f"label {label!r} is not a class"
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=f"{problem}: model {model.id} has {model.n_classes} classes (0..{model.n_classes - 1}): {shown}.",
    )


def _png(data: bytes, model_id: str) -> Response:
    return Response(data, media_type="image/png", headers={"X-Model-Id": model_id})


@router.get(
    "/sample", response_class=Response,
    responses={**PNG, **NO_MODEL, **unprocessable("Invalid parameter, or a label the model does not have")},
)
def sample(
    model: LoadedModelDep,
    label: Annotated[str, Query(min_length=1, max_length=100, description="Class to draw: its index or its name")],
    n: Annotated[int, Query(ge=1, le=100, description="Number of samples in the grid")] = 16,
    seed: Seed = 0,
) -> Response:
    """A PNG grid of `n` generated images of class `label`."""
    images = model.sample([_class_index(model, label)] * n, seed=seed)
    return _png(png_grid(images), model.id)


@router.post("/classify", responses={**NO_MODEL, **IMAGE_ERRORS})
def classify(
    model: LoadedModelDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="One or more PNG or JPEG images, any size")],
    novelty: Annotated[bool, Query(description="Also score each image's novelty (several times the work)")] = False,
) -> ClassifyPublic:
    """Class probabilities for each image, and with `novelty=true` a novelty score (0 typical … 1 unusual)."""
    with model.preparing():
        images = np.stack([_model_input(upload, settings, model.image_shape) for upload in files])
    probabilities, scores = model.classify(images, novelty)
    results = [
        Classification(
            filename=upload.filename, label=int(np.argmax(p)), label_name=model.class_names[int(np.argmax(p))],
            probabilities=[float(v) for v in p],
            novelty=None if scores is None else float(scores[i]),
        )
        for i, (upload, p) in enumerate(zip(files, probabilities))
    ]
    return ClassifyPublic(model_id=model.id, results=results)


@router.post("/analogies", response_class=Response, responses={**PNG, **NO_MODEL, **IMAGE_ERRORS})
def analogies(
    model: LoadedModelDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A PNG or JPEG image whose style is kept")],
) -> Response:
    """The uploaded image's style rendered under every label, one row."""
    images = model.analogies(_model_input(file, settings, model.image_shape))
    return _png(png_grid(images, columns=len(images)), model.id)
