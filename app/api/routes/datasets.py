"""Data sets: the built-in ones and uploads (.npz, Keras .npz, ImageFolder or labels.csv zips)
kept in the artifact store; their label log, images, and which images to label next."""

import re
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, File, Form, HTTPException, Path, Query, Response, UploadFile, status

from adgm_core.acquisition import DEFAULT_STRATEGY, REPRESENTATIVE, STRATEGIES
from app import services
from app.api.deps import ModelQuery, RuntimeDep, SessionDep, SettingsDep, get_loaded_model
from app.api.responses import BODY_ERRORS, error, unprocessable
from app.inference import LoadedModel
from app.schemas import (DatasetDetail, DatasetsPublic, LabelIn, LabelLogPublic, LabelsAccepted, SuggestionsPublic,
                         UploadPublic)

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetId = Annotated[str, Path(pattern=r"^(digits5k|mnist|[0-9a-f]{32})$", description="Data set id")]
NOT_FOUND = {404: error("No such data set")}
PNG = {200: {"content": {"image/png": {}}, "description": "PNG image"}}


def _size(value: str | None) -> tuple[int, int] | None:
    if value is None or not value.strip():
        return None
    match = re.fullmatch(r"\s*(\d{1,3})\s*(?:[x×,]\s*(\d{1,3}))?\s*", value)
    if not match:
        raise HTTPException(422, detail=f"size must be 'S' or 'HxW' in pixels (e.g. 28 or 32x24), got {value!r}.")
    height, width = int(match[1]), int(match[2] or match[1])
    if not (4 <= height <= 256 and 4 <= width <= 256):
        raise HTTPException(422, detail=f"size sides must lie in 4..256 pixels, got {height}x{width}.")
    return height, width


@router.post(
    "", status_code=status.HTTP_201_CREATED,
    responses={202: {"model": UploadPublic, "description": "A zip of many images, being decoded: poll its url"},
               **BODY_ERRORS, **unprocessable("Not a valid data set (the detail says why)")},
)
def upload_dataset(
    file: Annotated[UploadFile, File(description=".npz (images/labels, or Keras x_train/y_train/x_test/y_test), "
                                                 "or .zip (ImageFolder tree or labels.csv manifest)")],
    runtime: RuntimeDep,
    session: SessionDep,
    response: Response,
    name: Annotated[str | None, Form(max_length=100)] = None,
    size: Annotated[str | None, Form(description="Image size 'S' or 'HxW'; default: the most common, fit to 28×28")] = None,
    skip_invalid: Annotated[bool, Form(description="Skip bad files (unreadable images, files inside class folders "
                                                   "that are not images, images outside the layout) instead of refusing")] = False,
) -> DatasetDetail | UploadPublic:
    """Upload a data set; it is checked completely before it is stored. Files that are not images
    outside the class folders (README, CSV, JSON, …) are skipped and listed in `skipped`. A zip of
    more than ADGM_UPLOAD_BACKGROUND_IMAGES images is decoded in the background: the answer is 202
    with the upload's state, and GET /uploads/{id} tells its progress and, at the end, the data set."""
    stored = services.upload_dataset(runtime, session, file.file, name, file.filename, _size(size), skip_invalid)
    if isinstance(stored, UploadPublic):
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = stored.url
    return stored


@router.get("")
def list_datasets(settings: SettingsDep, session: SessionDep) -> DatasetsPublic:
    """Built-in data sets (those available on this server) and uploads, newest upload first."""
    return DatasetsPublic(datasets=services.list_datasets(settings, session))


@router.get("/{dataset_id}", responses={**NOT_FOUND, **unprocessable("A built-in data set this server does not have")})
def read_dataset(dataset_id: DatasetId, runtime: RuntimeDep, session: SessionDep) -> DatasetDetail:
    """One data set, with its class names, label version and per-class label counts."""
    return services.dataset_detail(runtime, session, dataset_id)


@router.get(
    "/{dataset_id}/images/{index}", response_class=Response,
    responses={**PNG, **NOT_FOUND, **unprocessable("An index past the data set's images, or an invalid parameter")},
)
def dataset_image(dataset_id: DatasetId, index: Annotated[int, Path(ge=0, le=10**7)], settings: SettingsDep) -> Response:
    """Training image `index` as a PNG, as the model sees it (ink bright on black)."""
    return Response(services.dataset_image(settings, dataset_id, index), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=86400, immutable"})


@router.post(
    "/{dataset_id}/labels",
    responses={**BODY_ERRORS, **NOT_FOUND,
               **unprocessable("An index or label out of range, or an unknown class name")},
)
def add_labels(
    dataset_id: DatasetId,
    entries: Annotated[list[LabelIn], Body(min_length=1, max_length=10_000)],
    runtime: RuntimeDep,
    session: SessionDep,
    author: Annotated[str, Query(min_length=1, max_length=100, description="Who labels")] = "api",
) -> LabelsAccepted:
    """Add or correct labels (class index or name; null removes one). Appended to the label log;
    bumps the data set's version."""
    return services.add_labels(runtime, session, dataset_id, entries, author)


@router.get("/{dataset_id}/labels", responses={**NOT_FOUND, **unprocessable("Invalid parameter")})
def label_log(
    dataset_id: DatasetId, runtime: RuntimeDep, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LabelLogPublic:
    """The newest entries of the label log, newest first."""
    return services.label_log(runtime, session, dataset_id, limit)


def model_on_demand(
    runtime: RuntimeDep,
    model: ModelQuery = None,
) -> Callable[[bool], LoadedModel | None]:
    """The model asked for, loaded only when the strategy needs one: `required`, 404 or 503 without
    it; not required, None when no model is named and none is trained yet (a named one must exist)."""
    def load(required: bool) -> LoadedModel | None:
        return get_loaded_model(runtime, model) if required or model is not None else runtime.served.get(None)
    return load


@router.get(
    "/{dataset_id}/suggestions",
    responses={**NOT_FOUND, 409: error("The model does not fit the data set's images or classes"),
               503: error("No trained model yet (a strategy other than representative)"),
               **unprocessable("Invalid parameter")},
)
def suggestions(
    dataset_id: DatasetId,
    model: Annotated[Callable[[bool], LoadedModel | None], Depends(model_on_demand)],
    runtime: RuntimeDep,
    n: Annotated[int, Query(ge=1, le=200, description="How many images")] = 20,
    strategy: Annotated[Literal[(REPRESENTATIVE, *STRATEGIES)] | None, Query(
        description="representative: images like many others of the pool and unlike the labelled ones, chosen "
                    "from the pixels (no model needed; the model's guesses are added when there is one); "
                    "bald | entropy | margin | random: the model's uncertainty; cover: margin within a k-means "
                    f"cover of the space of a, away from the labelled images. Default: {DEFAULT_STRATEGY}")] = None,
    diverse: Annotated[bool, Query(description="Spread the picks over the space of a (k-center of the best 10·n; "
                                               "cover spreads its own)")] = False,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> SuggestionsPublic:
    """The unlabelled images to label next, most useful first: by default representative ones (no
    model needed), or those a model is least sure of."""
    return services.suggestions(runtime, model, dataset_id, n, strategy, diverse, seed)
