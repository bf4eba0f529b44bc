"""Training jobs: start, list, read, cancel, and follow one as Server-Sent Events."""

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app import crud, services
from app.api.deps import JobId, RuntimeDep, SessionDep, SettingsDep
from app.api.responses import BODY_ERRORS, error, unprocessable
from app.runtime import Runtime
from app.schemas import EpochProgress, JobAccepted, JobCreate, JobPublic, JobsPublic
from store.jobs import JobNotFound
from store.status import TERMINAL
from store.tables import Job

router = APIRouter(tags=["jobs"])

TRAIN_BODY_LIMIT = 64 * 1024
NOT_FOUND = {404: error("No job with this id")}


@router.post(
    "/train", status_code=status.HTTP_202_ACCEPTED, max_body_size=TRAIN_BODY_LIMIT,
    responses={
        **BODY_ERRORS,
        **unprocessable("Invalid field, unknown data set, or more labels per class than it has"),
        404: error("The model named by init_model does not exist"),
        409: error("The model named by init_model does not fit the data set or the architecture asked for"),
        429: error("Too many jobs are already queued"),
    },
)
def create_job(body: JobCreate, runtime: RuntimeDep, response: Response) -> JobAccepted:
    """Queue a training job; follow it at `events_url`."""
    job = services.create_job(runtime, body)
    url = f"/jobs/{job.id}"
    response.headers["Location"] = url
    return JobAccepted(**job.model_dump(exclude={"progress"}), url=url, events_url=f"{url}/events")


@router.get("/jobs")
def list_jobs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JobsPublic:
    """Jobs, newest first."""
    return JobsPublic(jobs=crud.read_jobs(session, limit))


@router.get("/jobs/{job_id}", responses=NOT_FOUND)
def read_job(job_id: JobId, session: SessionDep) -> JobPublic:
    job = crud.read_job(session, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


@router.post(
    "/jobs/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 409: error("The job has already ended")},
)
def cancel_job(job_id: JobId, runtime: RuntimeDep) -> JobPublic:
    """A queued job is cancelled at once, a running one at its next batch."""
    runtime.store.request_cancel(job_id)  # JobNotFound → 404, JobFinished → 409
    with runtime.sessions() as session:
        return crud.read_job(session, job_id)


def existing_job(job_id: JobId, runtime: RuntimeDep) -> str:
    with runtime.sessions() as session:  # a short session: the stream must not hold a connection
        if session.get(Job, job_id) is None:
            raise JobNotFound(job_id)
    return job_id


def _poll(runtime: Runtime, job_id: str, after: int):
    with runtime.sessions() as session:
        status_now = session.get(Job, job_id).status  # read before the rows: a finished job's rows are all there
        rows = crud.progress_after(session, job_id, after)
        final = crud.read_job(session, job_id) if status_now in TERMINAL else None
    return rows, final


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse, responses=NOT_FOUND)
async def job_events(
    job_id: Annotated[str, Depends(existing_job)],
    settings: SettingsDep,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """`progress` events, one per epoch (past ones first), then one `end` event with the job."""
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    while True:
        rows, final = await run_in_threadpool(_poll, runtime, job_id, after)
        for row in rows:
            yield ServerSentEvent(event="progress", id=str(row.seq), data=EpochProgress.model_validate(row))
            after = row.seq
        if final is not None:
            yield ServerSentEvent(event="end", data=final)
            return
        await anyio.sleep(settings.events_poll_seconds)
