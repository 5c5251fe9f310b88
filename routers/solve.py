"""`POST /solve`: validate, enqueue, wait, return."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.config import Settings
from app.deps import get_queue, get_settings
from app.queue import JobQueue
from app.schemas import ErrorBody, SolveRequest, SolveResult
from app.solving import solve_and_wait

router = APIRouter(tags=["solve"])


@router.post(
    "/solve",
    response_model=SolveResult,
    response_model_exclude_none=False,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}, 504: {"model": ErrorBody}},
)
async def solve(
    body: SolveRequest,
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
) -> SolveResult:
    """Solve one problem and wait for the answer."""
    return await solve_and_wait(queue, body, settings)
