"""`POST /solve`: validate, enqueue, wait, return."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import SubmitDep, client_gone
from contract.schemas import ErrorBody, SolveRequest, SolveResult

router = APIRouter(tags=["solve"])
ERRORS = {
    status: {"model": ErrorBody}
    for status in (400, 401, 403, 409, 413, 415, 422, 429, 500, 503, 504)
}


@router.post("/solve", response_model=SolveResult, responses=ERRORS)  # type: ignore[arg-type]
async def solve(request: Request, body: SolveRequest, submitter: SubmitDep) -> SolveResult:
    """Solve one problem and wait for the answer, at most until the job's deadline
    (`timeout_s`). A client that disconnects cancels its job."""
    return await submitter.solve(body, lambda: client_gone(request))
