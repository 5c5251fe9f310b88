"""`POST /jobs` and `GET /jobs/{id}`: the asynchronous face of the same queue."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.deps import get_queue
from app.queue import JobQueue
from app.schemas import ErrorBody, JobAccepted, JobStatus, SolveRequest
from app.solving import submit

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def create_job(body: SolveRequest, queue: JobQueue = Depends(get_queue)) -> JobAccepted:
    """Queue a problem; poll `GET /jobs/{id}` for the result."""
    return JobAccepted(id=await submit(queue, body))


@router.get("/{job_id}", response_model=JobStatus, responses={404: {"model": ErrorBody}})
async def get_job(job_id: str, queue: JobQueue = Depends(get_queue)) -> JobStatus:
    return await queue.status(job_id)
