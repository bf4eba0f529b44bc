"""A Label Studio ML backend under /label-studio: give Label Studio this URL as the model's URL
(it appends the route names). Label Studio cannot send a bearer token, so the POST routes take
HTTP basic auth instead: ADGM_LABEL_STUDIO_USERNAME / ADGM_LABEL_STUDIO_PASSWORD when set, else
ADGM_API_KEY as the password when a key is set, else none (as every other route); reads are open.
"""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field

from app import label_studio_projects as projects
from app.api.deps import RuntimeDep, SettingsDep
from app.api.responses import BODY_ERRORS, UNAUTHORIZED, error, unprocessable
from app.label_studio import MODEL_CLASS, LabelStudioClient, parse_config, predict

basic = HTTPBasic(auto_error=False, description="When ADGM_LABEL_STUDIO_PASSWORD or ADGM_API_KEY is set.")


def require_basic_auth(settings: SettingsDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> None:
    password = settings.label_studio_password or settings.api_key
    if password is None:
        return
    user_ok = settings.label_studio_username is None or (
        credentials is not None
        and secrets.compare_digest(credentials.username.encode(), settings.label_studio_username.encode()))
    given = credentials.password.encode() if credentials else b""
    if not (secrets.compare_digest(given, password.get_secret_value().encode()) and user_ok):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": 'Basic realm="label-studio"'},
            detail="The Label Studio backend needs HTTP basic auth: give Label Studio the user and password "
                   "(ADGM_LABEL_STUDIO_USERNAME/PASSWORD, or ADGM_API_KEY as the password).",
        )


router = APIRouter(prefix="/label-studio", tags=["label studio"])
BasicAuthDep = Depends(require_basic_auth)
ERRORS = {**UNAUTHORIZED, **BODY_ERRORS, **unprocessable("A config, project or task this backend cannot serve (names why)")}


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


@router.post("/setup", dependencies=[BasicAuthDep], responses=ERRORS)
def setup(body: SetupRequest, runtime: RuntimeDep) -> SetupAnswer:
    """Records the project's classes (its <Choices>); its data set is made from its tasks at the
    first annotation or training request."""
    project_id = projects.project_id_of(body.project)
    projects.register(runtime, project_id, body.label_config)
    with runtime.sessions() as session:
        model = projects.model_for(session, projects.linked(runtime, project_id)[1])
    return SetupAnswer(model_version=model.id if model is not None else "untrained")


@router.post("/predict", dependencies=[BasicAuthDep], responses={**ERRORS, 503: error("No trained model yet, or its files are corrupt")})
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


@router.post("/webhook", dependencies=[BasicAuthDep], responses=ERRORS)
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
