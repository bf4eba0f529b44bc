"""Configuration of the API and the workers: one `Settings`, read from `ADGM_*` environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.artifacts import Artifacts


def _project_root() -> Path:
    """The repository root when running from a checkout, else the working directory."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def _default_mnist_dir() -> Path | None:
    candidate = (_project_root() / ".." / "shared" / "data" / "mnist").resolve()
    return candidate if candidate.is_dir() else None


class Settings(BaseSettings):
    """Everything the API, the embedded worker and the Celery workers read from the environment."""

    model_config = SettingsConfigDict(env_prefix="ADGM_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{_project_root() / 'var' / 'adgm.sqlite'}",
        description="SQLAlchemy URL of the job store (SQLite file or postgresql://…).",
    )
    artifact_dir: Path = Field(
        default_factory=lambda: _project_root() / "var" / "artifacts",
        description="Directory shared by the API and every worker: models, checkpoints, data sets.",
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis://…); unset runs training in an embedded worker."
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, every route but the public ones needs `Authorization: Bearer <key>`: "
                                  "this admin key, or a scoped token (`adgm token create`).",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="A bearer token that opens GET /metrics and nothing else (for Prometheus), "
                                  "checked when ADGM_API_KEY is set.",
    )
    mnist_dir: Path | None = Field(
        default_factory=_default_mnist_dir, description="Directory with the four MNIST IDX files."
    )
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="Largest request body.")
    max_dataset_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest size an uploaded .npz may unpack to (zip bombs)."
    )
    max_dataset_images: int = Field(
        default=100_000, ge=1, description="Most images (training and test) an uploaded data set may hold."
    )
    max_image_pixels: int = Field(
        default=25_000_000, ge=1, description="Largest decoded image (width × height); guards against bombs."
    )
    upload_background_images: int = Field(
        default=2000, ge=0, description="Zips with more images than this are decoded in the background: POST "
                                        "/datasets answers 202 and GET /uploads/{id} tells the progress.",
    )
    max_classify_files: int = Field(default=64, ge=1, description="Most images in one POST /classify.")
    max_infer_images: int = Field(
        default=256, ge=1, description="Most images in one Open Inference Protocol request (POST /v2/models/{name}/infer)."
    )
    device: str = Field(default="auto", description="Training device: auto, cpu, cuda, cuda:N, mps.")
    checkpoint_every: int = Field(default=5, ge=1, description="Epochs between resumable checkpoints.")
    embedded_workers: int = Field(
        default=1, ge=0, description="Training processes the API starts when no broker is set (0: none)."
    )
    embedded_worker_nice: int = Field(
        default=10, ge=0, le=19, description="Niceness of embedded workers, so training does not starve serving."
    )
    worker_torch_threads: int | None = Field(
        default=None, ge=1, description="torch threads per training process (unset: torch's default)."
    )
    api_torch_threads: int = Field(default=1, ge=1, description="torch threads of the API process, which imports torch only for acquisition scores and the ONNX export (inference runs in numpy); concurrency comes from the thread pool.")
    model_cache_size: int = Field(default=4, ge=1, description="Trained models the API keeps loaded.")
    heartbeat_seconds: float = Field(
        default=2.0, gt=0, description="How often a running job's worker writes its heartbeat and reads cancel."
    )
    stale_after_seconds: float = Field(
        default=60.0, gt=0, description="A running job whose heartbeat is older than this is re-queued."
    )
    redispatch_after_seconds: float = Field(
        default=120.0, gt=0, description="Celery mode: a queued job no worker took after this is sent again."
    )
    reaper_seconds: float = Field(default=10.0, gt=0, description="How often the API looks for stale jobs.")
    max_attempts: int = Field(default=3, ge=1, description="Worker losses after which a job is failed.")
    max_queued_jobs: int = Field(
        default=200, ge=1, description="Queued jobs beyond which POST /train answers 429 (no flooding the queue)."
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, description="Embedded worker: idle poll interval.")
    events_poll_seconds: float = Field(default=0.5, gt=0, description="SSE: how often a stream checks for news.")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (http://…, sqlite:…, file:…): each job becomes a run. Unset: none."
    )
    mlflow_experiment: str = Field(default="adgm-serve", min_length=1, description="MLflow experiment of the runs.")
    mlflow_model_alias: str = Field(
        default="candidate", pattern=r"^[A-Za-z0-9_-]+$",
        description="Alias set on the registered model version of each succeeded job ('latest' is MLflow's own).",
    )
    mlflow_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Time-out of each request to the tracking server (not retried)."
    )
    mlflow_flush_seconds: float = Field(
        default=60.0, ge=0, description="After a job's outcome is recorded, how long its worker waits for MLflow."
    )
    label_studio_url: str | None = Field(
        default=None, pattern=r"^https?://[^/?#]+/?$",
        description="Label Studio whose task images the /label-studio backend fetches (only from this host).",
    )
    label_studio_api_key: SecretStr | None = Field(
        default=None, description="Label Studio access token sent with those fetches (`Authorization: Token …`)."
    )
    label_studio_username: str | None = Field(
        default=None, description="HTTP basic auth user that Label Studio must send to /label-studio."
    )
    label_studio_password: SecretStr | None = Field(
        default=None, description="Its password (unset: ADGM_API_KEY, when set, is the password)."
    )
    label_studio_max_image_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest task image fetched from Label Studio."
    )
    label_studio_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time-out of each image fetch from Label Studio."
    )

    @field_validator("broker_url", "api_key", "metrics_token", "mnist_dir", "worker_torch_threads", "mlflow_tracking_uri",
                     "label_studio_url", "label_studio_api_key", "label_studio_username", "label_studio_password",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        """`ADGM_API_KEY=` (as docker compose passes an unset variable) means no key, not an empty one."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    def as_environment(self) -> dict[str, str]:
        """These settings as `ADGM_*` variables, for a process that must read exactly them."""
        environment = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            environment[f"ADGM_{name.upper()}"] = "" if value is None else str(value)
        return environment

    @property
    def artifacts(self) -> Artifacts:
        return Artifacts(self.artifact_dir)


@lru_cache
def get_settings() -> Settings:
    return Settings()
