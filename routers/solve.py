"""`POST /solve`: validate, enqueue, wait, return."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request

from app.auth import Limiter, Principal
from app.deps import (
    allowed,
    client_gone,
    get_limiter,
    get_queue,
    get_settings,
    require_scope,
)
from app.solving import solve_and_wait
from contract.schemas import ErrorBody, SolveRequest, SolveResult
from contract.settings import Settings
from jobqueue.protocol import JobQueue

router = APIRouter(tags=["solve"])
ERRORS = {
    status: {"model": ErrorBody}
    for status in (400, 401, 403, 409, 413, 415, 422, 429, 500, 503, 504)
}


@router.post("/solve", response_model=SolveResult, responses=ERRORS)  # type: ignore[arg-type]
async def solve(
    request: Request,
    body: SolveRequest,
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("solve")),
    idempotency_key: str | None = Header(default=None, max_length=200),
    limiter: Limiter | None = Depends(get_limiter),
) -> SolveResult:
    """Solve one problem and wait for the answer, at most until the job's deadline
    (`timeout_s`). A client that disconnects cancels its job."""
    allowed(principal, reveal_thoughts=body.reveal_thoughts)
    return await solve_and_wait(
        queue, body, settings, principal, idempotency_key, lambda: client_gone(request), limiter
    )
