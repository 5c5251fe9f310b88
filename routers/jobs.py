"""`POST /jobs`, `GET /jobs/{id}` and `GET /jobs/{id}/events` (SSE): the
asynchronous face of the same queue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from app.deps import OwnedJob, QueueDep, SolveCaller, SubmitDep
from app.job_pages import visible_event
from app.solving import cancel
from contract.schemas import ErrorBody, JobAccepted, JobStatus, SolveRequest

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}


@router.post("", status_code=202, response_model=JobAccepted, responses=ERRORS)  # type: ignore[arg-type]
async def create_job(body: SolveRequest, submitter: SubmitDep) -> JobAccepted:
    """Queue a problem; poll `GET /jobs/{id}` or follow `/jobs/{id}/events`."""
    return JobAccepted(id=await submitter.submit(body))


@router.get("/{job_id}", response_model=JobStatus, responses=ERRORS)  # type: ignore[arg-type]
async def get_job(job: OwnedJob) -> JobStatus:
    """The job's state; only the key that submitted it sees it (others get a 404)."""
    return job


@router.delete("/{job_id}", response_model=JobStatus, responses=ERRORS)  # type: ignore[arg-type]
async def cancel_job(job_id: str, queue: QueueDep, principal: SolveCaller) -> JobStatus:
    """Cancel a queued or running job of this key: it ends `failed` with `error_code:
    cancelled`, and the worker running it stops its engine requests and tool calls. A
    finished job is a 409; another key's job is a 404."""
    return await cancel(queue, job_id, principal)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        **ERRORS,  # type: ignore[dict-item]
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
    },
)
async def job_events(job: OwnedJob, queue: QueueDep, principal: SolveCaller) -> EventSourceResponse:
    """Server-sent events: `status`, one `stage` per finished stage (its detail and engine
    calls, bounded; thoughts only with reveal_thoughts), then `done`. Only the key that
    submitted the job may follow it (others get a 404 before the stream); a trace page's
    session cookie stands for the key here (README "Trace page")."""
    job_id = job.id

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for event in queue.events(job_id):
            shown = visible_event(event, principal)
            yield {"event": str(event.get("type", "message")), "data": json.dumps(shown)}

    return EventSourceResponse(stream())
