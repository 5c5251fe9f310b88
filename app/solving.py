"""Gateway-side solving: enqueue (with idempotency and the optional result cache),
wait for the worker's outcome, and count it.

`/solve` is synchronous only for the client: it is the same queued job as
`POST /jobs`, so a gateway-side timeout leaves the job running and pollable.
"""

from __future__ import annotations

import hashlib
import time

from app.auth import Principal
from app.config import Settings
from app.errors import InvalidStrategyError, JobFailedError, JobTimeoutError, QueueFullError
from app.metrics import REQUEST_DURATION, REQUESTS
from app.queue import JobQueue
from app.schemas import JobState, SolveRequest, SolveResult

# The worker enforces the job timeout; the gateway waits a little longer so the
# worker's own outcome (with its reason) normally arrives first.
WAIT_GRACE_S = 5.0


def _cache_key(request: SolveRequest) -> str:
    return "cache:" + hashlib.sha256(request.model_dump_json().encode()).hexdigest()


async def submit(
    queue: JobQueue,
    request: SolveRequest,
    settings: Settings,
    principal: Principal,
    idempotency_key: str | None = None,
) -> str:
    """Enqueue, counting a refusal under backpressure.

    An `Idempotency-Key` is scoped to the caller's key. The result cache is an
    idempotency key derived from the request itself; a cached failure is not reused.
    """
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
) -> SolveResult:
    strategy = request.strategy.name
    started = time.perf_counter()
    job_id = await submit(queue, request, settings, principal, idempotency_key)
    timeout = (request.timeout_s or settings.default_timeout_s) + WAIT_GRACE_S
    status = await queue.wait(job_id, timeout)
    REQUEST_DURATION.labels(strategy=strategy).observe(time.perf_counter() - started)
    if status.status == JobState.succeeded and status.result is not None:
        REQUESTS.labels(strategy=strategy, outcome="ok").inc()
        return status.result
    if status.status == JobState.failed and status.error_code == "invalid_request":
        REQUESTS.labels(strategy=strategy, outcome="invalid").inc()
        raise InvalidStrategyError(status.error or f"Job {job_id} was refused by the worker.")
    if status.status == JobState.failed and status.error_code != "timeout":
        REQUESTS.labels(strategy=strategy, outcome="error").inc()
        raise JobFailedError(f"Job {job_id} failed: {status.error}")
    REQUESTS.labels(strategy=strategy, outcome="timeout").inc()
    raise JobTimeoutError(
        status.error
        or f"Job {job_id} did not finish in {timeout:g} s; poll GET /jobs/{job_id} for it."
    )
