"""A Label Studio ML backend under /label-studio: give Label Studio this URL as the model's URL
(it appends the route names). Label Studio cannot send a bearer token, so these routes also take
HTTP basic auth with a token as the password (app/api/authentication.py): an `infer` token is
enough for setup and predictions, the webhook needs `label`.
"""

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from app import label_studio_projects as projects
from app.api.deps import RuntimeDep, SettingsDep
from app.api.responses import BODY_ERRORS, error, unprocessable
from app.label_studio import MODEL_CLASS, LabelStudioClient, parse_config, predict

router = APIRouter(prefix="/label-studio", tags=["label studio"])
ERRORS = {**BODY_ERRORS, **unprocessable("A config, project or task this backend cannot serve (names why)")}


class Health(BaseModel):
    status: str
    model_class: str


class SetupRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    project: str | int = Field(description="Label Studio's project (`id` or `id.created-at`)")
    label_config: str = Field(alias="schema", description="The project's labelling config (XML)")


class SetupAnswer(BaseModel):
    model_version: str


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    tasks: list[dict[str, Any]] = Field(max_length=1000)
    project: str | int | None = None
    label_config: str | None = None


class PredictAnswer(BaseModel):
    results: list[dict[str, Any]]
    model_version: str


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str


def _health() -> Health:
    return Health(status="UP", model_class=MODEL_CLASS)


@router.get("/health")
def health() -> Health:
    return _health()


@router.get("/")
def root() -> Health:
    return _health()


@router.post("/setup", responses=ERRORS)
def setup(body: SetupRequest, runtime: RuntimeDep) -> SetupAnswer:
    """Records the project's classes (its <Choices>); its data set is made from its tasks at the
    first annotation or training request."""
    project_id = projects.project_id_of(body.project)
    projects.register(runtime, project_id, body.label_config)
    with runtime.sessions() as session:
        model = projects.model_for(session, projects.linked(runtime, project_id)[1])
    return SetupAnswer(model_version=model.id if model is not None else "untrained")


@router.post("/predict", responses={**ERRORS, 503: error("No trained model yet, or its files are corrupt")})
def predict_tasks(body: PredictRequest, runtime: RuntimeDep, settings: SettingsDep) -> PredictAnswer:
    """One `choices` prediction per task, `score` = the model's probability of that class."""
    dataset_id = None
    if body.project is not None and body.label_config is None:
        config, dataset_id = projects.linked(runtime, projects.project_id_of(body.project))
    else:
        config = parse_config(body.label_config)
        if body.project is not None:
            try:
                dataset_id = projects.linked(runtime, projects.project_id_of(body.project))[1]
            except projects.LabelStudioError:
                pass  # predictions need no link; labels do
    with runtime.sessions() as session:
        record = projects.model_for(session, dataset_id)
    if record is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="No trained model yet: start one with "
                            "POST /train, or train from Label Studio once some tasks are labelled.")
    client = LabelStudioClient(settings)
    try:
        results = predict(body.tasks, config, runtime.models.get(record), client)
    finally:
        client.close()
    return PredictAnswer(results=results, model_version=record.id)


@router.post("/webhook", responses=ERRORS)
def webhook(event: WebhookEvent, runtime: RuntimeDep) -> dict[str, Any]:
    """ANNOTATION_CREATED/UPDATED go to the project's label log, and after ANNOTATIONS_DELETED
    the data set takes Label Studio's remaining annotations; START_TRAINING starts a warm-started
    job. Other events are acknowledged and ignored."""
    payload = event.model_dump()
    action = event.action
    if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        annotation, task = payload.get("annotation") or {}, payload.get("task") or {}
        task_id = task.get("id", annotation.get("task"))
        if not isinstance(task_id, int) or not isinstance(annotation, dict):
            raise projects.LabelStudioError(f"{action} without its task and annotation.")
        answer = projects.annotated(runtime, projects.project_id_of(payload.get("project")), task_id,
                                    annotation.get("result"), bool(annotation.get("was_cancelled")),
                                    f"{projects.AUTHOR}:{annotation.get('completed_by')}")
    elif action in ("ANNOTATION_DELETED", "ANNOTATIONS_DELETED"):  # Label Studio 1.x sends the plural
        answer = projects.reconcile(runtime, projects.project_id_of(payload.get("project")), projects.AUTHOR)
    elif action == "START_TRAINING":
        job = projects.train(runtime, projects.project_id_of(payload.get("project")))
        answer = {"job_id": job.id, "status": job.status, "dataset": job.dataset}
    else:
        answer = {"ignored": True}
    return {"action": action, **answer}
