"""`POST /solve`: validate, enqueue, wait, return."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header

from app.auth import Principal
from app.config import Settings
from app.deps import allowed, get_queue, get_settings, require_scope
from app.queue import JobQueue
from app.schemas import ErrorBody, SolveRequest, SolveResult
from app.solving import solve_and_wait

router = APIRouter(tags=["solve"])
ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 413, 422, 429, 503, 504)}


@router.post("/solve", response_model=SolveResult, responses=ERRORS)  # type: ignore[arg-type]
async def solve(
    body: SolveRequest,
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("solve")),
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> SolveResult:
    """Solve one problem and wait for the answer."""
    allowed(principal, reveal_thoughts=body.reveal_thoughts)
    return await solve_and_wait(queue, body, settings, principal, idempotency_key)
