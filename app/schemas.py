"""Request and response bodies of the HTTP API (see docs/api.md)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from adgm_core.config import ACTIVATIONS, LR_SCHEDULES
from adgm_core.data.sources import BUILTIN_NAMES
from adgm_core.presets import DEFAULT_PRESET, PRESETS, DataProfile, resolve
from store.ids import ID_PATTERN
from store.status import JobStatus

DATASET_PATTERN = rf"^({'|'.join(BUILTIN_NAMES)}|[0-9a-f]{{32}})$"
PresetName = Literal[tuple(PRESETS)]


def _whole_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class JobCreate(BaseModel):
    """A training job: data set, a preset (a named recipe, `adgm_core.presets`), and any of the
    preset's parameters to override. A field left out takes the preset's value."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "10" or true is not a number of epochs

    dataset: Annotated[str | None, Field(
        pattern=DATASET_PATTERN,
        description="'digits5k', 'mnist' or an uploaded data set id; default: the preset's (digits5k for quick)",
    )] = None
    preset: PresetName = Field(default=DEFAULT_PRESET, description="Named recipe that fills every parameter not given")
    labels_per_class: Annotated[int | None, Field(ge=1, le=1000)] = None
    epochs: Annotated[int | None, Field(ge=1, le=2000)] = None
    hidden: Annotated[list[Annotated[int, Field(ge=8, le=2048)]] | None, Field(min_length=1, max_length=4)] = None
    z_dim: Annotated[int | None, Field(ge=1, le=512)] = None
    a_dim: Annotated[int | None, Field(ge=1, le=512)] = None
    skip: bool | None = Field(default=None, description="Skip variant (SDGM); false: ADGM")
    learning_rate: Annotated[float | None, Field(ge=1e-6, le=1.0)] = None
    batch_size: Annotated[int | None, Field(ge=8, le=4096)] = None
    mc_samples: Annotated[int | None, Field(ge=1, le=64)] = None
    activation: Literal[ACTIVATIONS] | None = None
    batch_norm: bool | None = Field(default=None, description="Batch normalisation after every hidden layer")
    deterministic_a: bool | None = Field(default=None, description="q(a|x) a point mass at its mean (ablation)")
    labelled_batch_size: Annotated[int | None, Field(ge=1, le=4096)] = None
    lr_schedule: Literal[LR_SCHEDULES] | None = Field(
        default=None, description="'step': x lr_decay every lr_decay_every epochs; 'cosine': to 0 at the last step")
    lr_decay: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    lr_decay_every: Annotated[int | None, Field(ge=0, le=2000)] = None
    lr_warmup_steps: Annotated[int | None, Field(ge=0, le=1_000_000)] = None
    warmup_steps: Annotated[int | None, Field(ge=0, le=1_000_000, description="KL warm-up steps")] = None
    grad_clip: Annotated[float | None, Field(gt=0.0, le=1e6, description="Max global gradient norm")] = None
    grad_clip_value: Annotated[float | None, Field(gt=0.0, le=1e6, description="Then each element to ±this")] = None
    classifier_samples: Annotated[int | None, Field(
        ge=1, le=64, description="Draws of a of its own for the classification term; 1: the bound's samples")] = None
    mc_average_softmax: bool | None = Field(
        default=None, description="Labelled cross-entropy on q(y|x) averaged over the MC samples")
    weight_prior: bool | None = Field(default=None, description="N(0, 1) prior on the weights, scaled by 1/N")
    ema_decay: Annotated[float | None, Field(gt=0.0, lt=1.0, description="Moving average of the weights")] = None
    alpha: Annotated[float | None, Field(gt=0.0, le=1e6, description="Weight of the classification term")] = None
    eval_samples: Annotated[int | None, Field(ge=1, le=200, description="Draws of a averaged at test")] = None
    bf16: bool | None = Field(default=None, description="bf16 autocast for the networks")
    classifier_shift: Annotated[int | None, Field(ge=0, le=8, description="The classification term sees the labelled images moved by up to ±this many pixels")] = None
    seed: Annotated[int | None, Field(ge=0, le=2**31 - 1)] = None
    name: Annotated[str | None, Field(max_length=100)] = None
    init_model: Annotated[str | None, Field(pattern=ID_PATTERN, description="Start from this model's weights (warm start)")] = None
    use_all_labels: bool | None = Field(
        default=None, description="Train on every label of the data set instead of labels_per_class per class; "
        "default: true for a partly labelled upload when labels_per_class is not given")

    @model_validator(mode="after")
    def _dataset_of_the_preset(self) -> "JobCreate":
        if self.dataset is None:
            self.dataset = PRESETS[self.preset].dataset
        return self

    def params(self, data: DataProfile | None = None) -> dict[str, Any]:
        """What the job records: the data set, name and preset, and every training parameter (the
        preset's adapted to `data`, the training images, when given)."""
        overrides = self.model_dump(exclude={"dataset", "preset", "name", "init_model", "use_all_labels"})
        return {"dataset": self.dataset, "name": self.name, "preset": self.preset,
                **resolve(self.preset, data, **overrides)}

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


class PresetPublic(BaseModel):
    name: str
    description: str
    expected: str
    dataset: str
    params: dict[str, Any]  # what the preset sets; every other parameter is the core's default
    resolved: dict[str, Any]  # every training parameter a job of this preset gets


class PresetsPublic(BaseModel):
    presets: list[PresetPublic]
    default: str


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
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    status: JobStatus
    dataset: str
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    history: list[EpochProgress]
    model_id: str | None
    error: str | None
    dataset_version: int | None = None

    @computed_field
    @property
    def progress(self) -> EpochProgress | None:
        """The newest epoch's report."""
        return self.history[-1] if self.history else None


class JobAccepted(JobPublic):
    url: str
    events_url: str


class JobsPublic(BaseModel):
    jobs: list[JobPublic]


class SupervisedBaselinePublic(BaseModel):
    """A plain classifier fitted on exactly the model's labelled images (adgm_core.baseline): what
    the labels alone give, so that the model's own figure shows what the unlabelled images added."""

    kind: str = Field(description="logistic_regression: multinomial, on the pixels")
    n_labelled: int
    labelled_fingerprint: str = Field(description="sha256 (16 hex) of the labelled images and labels it saw")
    test_accuracy: float | None = Field(description="On the data set's test images; none without any")


class ModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    job_id: str | None
    dataset: str
    created_at: datetime
    config: dict[str, Any]
    metrics: dict[str, Any]
    is_default: bool = False

    @computed_field
    @property
    def supervised_baseline(self) -> SupervisedBaselinePublic | None:
        """From `metrics`; none for models trained before the baseline was recorded."""
        baseline = self.metrics.get("supervised_baseline")
        return SupervisedBaselinePublic.model_validate(baseline) if baseline else None


class ModelsPublic(BaseModel):
    models: list[ModelPublic]
    default: str | None


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    builtin: bool = False
    n_images: int
    n_labelled: int
    n_classes: int
    image_shape: list[int]
    created_at: datetime | None
    class_names: list[str] = []
    version: int = 0


class ClassCount(BaseModel):
    label: int
    label_name: str
    count: int


class DatasetDetail(DatasetPublic):
    n_test_images: int = 0
    label_counts: list[ClassCount]
    skipped: list[str] = Field(default=[], description="Files of the upload that were not used, each with why "
                                                       "(not an image outside the class folders, unreadable, …)")


class UploadPublic(BaseModel):
    """An upload decoded in the background: POST /datasets answers it with 202; poll its `url`."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The id the data set gets")
    name: str
    status: Literal["queued", "running", "succeeded", "failed"]
    n_images: int = Field(description="Images to decode")
    n_done: int = Field(description="Images decoded so far")
    skipped: list[str] = Field(description="Files of the upload that were not used, each with why")
    error: str | None = Field(description="Why the upload failed: what a 422 would have said")
    created_at: datetime
    finished_at: datetime | None
    dataset: DatasetDetail | None = Field(default=None, description="The data set, once the upload succeeded")

    @computed_field
    @property
    def url(self) -> str:
        return f"/uploads/{self.id}"


class DatasetsPublic(BaseModel):
    datasets: list[DatasetPublic]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: Annotated[int, Field(ge=0, strict=True, description="Training image index")]
    label: int | str | None = Field(description="Class index, class name, or null to remove the label")

    @model_validator(mode="before")
    @classmethod
    def _integral_floats_are_integers(cls, data: Any) -> Any:
        """JSON Schema counts 1100.0 as an integer; strict validation alone would refuse it."""
        return {key: _whole_number(value) for key, value in data.items()} if isinstance(data, dict) else data


class LabelsAccepted(BaseModel):
    dataset: str
    version: int
    added: int
    label_counts: list[ClassCount]


class LabelEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    index: int = Field(validation_alias="image_index")
    label: int | None
    old_label: int | None
    author: str
    created_at: datetime


class LabelLogPublic(BaseModel):
    dataset: str
    version: int
    entries: list[LabelEntryPublic]


class Suggestion(BaseModel):
    index: int
    image_url: str
    score: float = Field(description="Higher: label it sooner; for `representative`, the share of the unlabelled "
                                     "images like this one (its cluster)")
    label: int | None = Field(default=None, description="The model's guess (none for `representative`)")
    label_name: str | None = None
    probabilities: list[float] | None = None


class SuggestionsPublic(BaseModel):
    model_id: str | None = Field(description="The model that scored the images, or for `representative` gave its guesses; none when no model was used")
    dataset: str
    version: int
    strategy: str
    diverse: bool
    seed: int
    pool_size: int = Field(description="Unlabelled images scored")
    suggestions: list[Suggestion]


class Classification(BaseModel):
    filename: str | None
    label: int
    label_name: str
    probabilities: list[float]
    novelty: float | None = Field(ge=0.0, le=1.0, description="null unless asked for with ?novelty=true")


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
