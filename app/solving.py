"""Gateway-side solving: enqueue (with idempotency and the optional result cache),
wait for the worker's outcome, and count it.

`/solve` is synchronous only for the client: it is the same queued job as
`POST /jobs`, so a gateway-side timeout leaves the job running and pollable.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

from app.auth import Limiter, Principal
from app.budget import charge, check_request
from app.metrics import REQUEST_DURATION, REQUESTS
from contract.errors import (
    ConflictError,
    JobTimeoutError,
    Outcome,
    QueueFullError,
    error_for_outcome,
)
from contract.schemas import JobState, JobStatus, SolveRequest, SolveResult
from contract.settings import Settings
from jobqueue.protocol import FINAL_STATES, JobQueue

# The worker enforces the job's deadline; the gateway waits this much longer so the
# worker's own outcome (with its reason) normally arrives first.
WAIT_GRACE_S = 1.0
# The request metric's outcome label per job outcome (a closed set).
REQUEST_OUTCOMES: dict[Outcome, str] = {
    Outcome.invalid_request: "invalid",
    Outcome.prompt_too_long: "invalid",
    Outcome.tool_unavailable: "unavailable",
    Outcome.engine_unavailable: "unavailable",
    Outcome.timeout: "timeout",
    Outcome.cancelled: "cancelled",
    Outcome.internal: "error",
}


def _cache_key(request: SolveRequest) -> str:
    return "cache:" + hashlib.sha256(request.model_dump_json().encode()).hexdigest()


async def submit(
    queue: JobQueue,
    request: SolveRequest,
    settings: Settings,
    principal: Principal,
    idempotency_key: str | None = None,
    limiter: Limiter | None = None,
) -> str:
    """Check the request's cost, then enqueue, counting a refusal under backpressure.

    An `Idempotency-Key` is scoped to the caller's key. The result cache is an
    idempotency key derived from the request itself; a cached failure is not reused.
    """
    cost = check_request(request, settings)
    await charge(limiter, principal, cost)
    try:
        if idempotency_key is not None:
            return await queue.submit(request, f"{principal.name}:{idempotency_key}")
        if settings.result_cache:
            job_id = await queue.submit(request, _cache_key(request))
            if (await queue.status(job_id)).status != JobState.failed:
                return job_id
        return await queue.submit(request)
    except QueueFullError:
        REQUESTS.labels(strategy=request.strategy.name, outcome="rejected").inc()
        raise


async def solve_and_wait(
    queue: JobQueue,
    request: SolveRequest,
    settings: Settings,
    principal: Principal,
    idempotency_key: str | None = None,
    disconnected: Callable[[], Awaitable[None]] | None = None,
    limiter: Limiter | None = None,
) -> SolveResult:
    """Submit, then wait until the job finishes or its deadline passes.

    The deadline is the job's own (fixed at submit, `timeout_s` or the default), so
    the client's wait and the worker's work end together; the small grace lets the
    worker's timeout outcome, with its reason, arrive first. `disconnected` resolves
    when the client goes away: the job is then cancelled, not left running.
    """
    strategy = request.strategy.name
    started = time.perf_counter()
    job_id = await submit(queue, request, settings, principal, idempotency_key, limiter)
    timeout = (request.timeout_s or settings.default_timeout_s) + WAIT_GRACE_S
    status = await _wait_or_cancel(queue, job_id, timeout, disconnected)
    REQUEST_DURATION.labels(strategy=strategy).observe(time.perf_counter() - started)
    if status.status == JobState.succeeded and status.result is not None:
        REQUESTS.labels(strategy=strategy, outcome="ok").inc()
        return status.result
    if status.status == JobState.failed:
        outcome = status.error_code or Outcome.internal
        REQUESTS.labels(strategy=strategy, outcome=REQUEST_OUTCOMES[outcome]).inc()
        raise error_for_outcome(outcome, status.error or f"Job {job_id} failed.")
    REQUESTS.labels(strategy=strategy, outcome="timeout").inc()
    raise JobTimeoutError(
        f"Job {job_id} did not finish by its deadline ({timeout - WAIT_GRACE_S:g} s); "
        f"poll GET /jobs/{job_id} for its outcome."
    )


async def _wait_or_cancel(
    queue: JobQueue,
    job_id: str,
    timeout: float,
    disconnected: Callable[[], Awaitable[None]] | None,
) -> JobStatus:
    """The job's status when it finishes; if the client leaves first, cancel it."""
    if disconnected is None:
        return await queue.wait(job_id, timeout)
    waiting = asyncio.ensure_future(queue.wait(job_id, timeout))
    gone = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if waiting.done():
        return waiting.result()
    waiting.cancel()
    return await queue.cancel(job_id)


async def cancel(queue: JobQueue, job_id: str) -> JobStatus:
    """`DELETE /jobs/{id}`: a finished job is a 409 (nothing left to cancel)."""
    before = await queue.status(job_id)
    if before.status in FINAL_STATES:
        raise ConflictError(
            f"Job {job_id} has already finished ({before.status.value}); nothing to cancel."
        )
    status = await queue.cancel(job_id)
    REQUESTS.labels(strategy="unknown", outcome="cancelled").inc()
    return status
