"""Request and response bodies of the HTTP API (see docs/api.md)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adgm_core.config import ModelConfig
from adgm_core.data.sources import BUILTIN_NAMES

ID_PATTERN = r"^[0-9a-f]{32}$"
DATASET_PATTERN = rf"^({'|'.join(BUILTIN_NAMES)}|[0-9a-f]{{32}})$"

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _whole_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class JobCreate(BaseModel):
    """A training job: data set, number of labels per class, model sizes and optimisation."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "10" or true is not a number of epochs

    dataset: Annotated[str, Field(pattern=DATASET_PATTERN, description="'digits5k', 'mnist' or an uploaded data set id")] = "digits5k"
    labels_per_class: Annotated[int, Field(ge=1, le=1000)] = 10
    epochs: Annotated[int, Field(ge=1, le=2000)] = 10
    hidden: Annotated[list[Annotated[int, Field(ge=8, le=2048)]], Field(min_length=1, max_length=4)] = [256, 128]
    z_dim: Annotated[int, Field(ge=1, le=512)] = 32
    a_dim: Annotated[int, Field(ge=1, le=512)] = 32
    skip: bool = Field(default=ModelConfig.skip, description="Skip variant (SDGM), the core's default; false: ADGM")
    learning_rate: Annotated[float, Field(ge=1e-6, le=1.0)] = 3e-4
    batch_size: Annotated[int, Field(ge=8, le=4096)] = 100
    mc_samples: Annotated[int, Field(ge=1, le=64)] = 1
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    name: Annotated[str | None, Field(max_length=100)] = None

    @model_validator(mode="before")
    @classmethod
    def _integral_floats_are_integers(cls, data: Any) -> Any:
        """JSON Schema counts 36.0 as an integer; strict validation alone would refuse it."""
        if not isinstance(data, dict):
            return data
        data = {key: _whole_number(value) for key, value in data.items()}
        if isinstance(data.get("hidden"), list):
            data["hidden"] = [_whole_number(width) for width in data["hidden"]]
        return data


class EpochProgress(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    epochs: int
    elbo: float
    labelled_accuracy: float
    test_accuracy: float | None
    examples_per_second: float
    eta_seconds: float
    learning_rate: float


class JobPublic(BaseModel):
    id: str
    name: str | None
    status: JobStatusName
    dataset: str
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: EpochProgress | None
    history: list[EpochProgress]
    model_id: str | None
    error: str | None


class JobAccepted(JobPublic):
    url: str
    events_url: str


class JobsPublic(BaseModel):
    jobs: list[JobPublic]


class ModelPublic(BaseModel):
    id: str
    name: str
    job_id: str | None
    dataset: str
    created_at: datetime
    config: dict[str, Any]
    metrics: dict[str, Any]
    is_default: bool


class ModelsPublic(BaseModel):
    models: list[ModelPublic]
    default: str | None


class DatasetPublic(BaseModel):
    id: str
    name: str
    builtin: bool
    n_images: int
    n_labelled: int
    n_classes: int
    image_shape: list[int]
    created_at: datetime | None


class DatasetsPublic(BaseModel):
    datasets: list[DatasetPublic]


class Classification(BaseModel):
    filename: str | None
    label: int
    probabilities: list[float]
    novelty: float = Field(ge=0.0, le=1.0)


class ClassifyPublic(BaseModel):
    model_id: str
    results: list[Classification]


class Readiness(BaseModel):
    database: str
    broker: str
    artifacts: str


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ErrorPublic(BaseModel):
    detail: str


class UnprocessablePublic(BaseModel):
    detail: str | list[dict[str, Any]]
