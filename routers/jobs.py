"""`POST /jobs`, `GET /jobs/{id}` and `GET /jobs/{id}/events` (SSE): the
asynchronous face of the same queue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Header
from sse_starlette.sse import EventSourceResponse

from app.auth import Limiter, Principal
from app.deps import allowed, get_limiter, get_queue, get_settings, require_scope
from app.solving import cancel, submit
from contract.schemas import ErrorBody, JobAccepted, JobStatus, SolveRequest
from contract.settings import Settings
from jobqueue.protocol import JobQueue

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}


@router.post("", status_code=202, response_model=JobAccepted, responses=ERRORS)  # type: ignore[arg-type]
async def create_job(
    body: SolveRequest,
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("solve")),
    idempotency_key: str | None = Header(default=None, max_length=200),
    limiter: Limiter | None = Depends(get_limiter),
) -> JobAccepted:
    """Queue a problem; poll `GET /jobs/{id}` or follow `/jobs/{id}/events`."""
    allowed(principal, reveal_thoughts=body.reveal_thoughts)
    job_id = await submit(queue, body, settings, principal, idempotency_key, limiter)
    return JobAccepted(id=job_id)


@router.get("/{job_id}", response_model=JobStatus, responses=ERRORS)  # type: ignore[arg-type]
async def get_job(
    job_id: str,
    queue: JobQueue = Depends(get_queue),
    _: Principal = Depends(require_scope("solve")),
) -> JobStatus:
    return await queue.status(job_id)


@router.delete("/{job_id}", response_model=JobStatus, responses=ERRORS)  # type: ignore[arg-type]
async def cancel_job(
    job_id: str,
    queue: JobQueue = Depends(get_queue),
    _: Principal = Depends(require_scope("solve")),
) -> JobStatus:
    """Cancel a queued or running job: it ends `failed` with `error_code: cancelled`,
    and the worker running it stops its engine requests and tool calls. A finished
    job is a 409."""
    return await cancel(queue, job_id)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        **ERRORS,  # type: ignore[dict-item]
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
    },
)
async def job_events(
    job_id: str,
    queue: JobQueue = Depends(get_queue),
    _: Principal = Depends(require_scope("solve")),
) -> EventSourceResponse:
    """Server-sent events: `status`, one `stage` per finished stage, then `done`."""
    await queue.status(job_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for event in queue.events(job_id):
            yield {"event": str(event.get("type", "message")), "data": json.dumps(event)}

    return EventSourceResponse(stream())
