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
from dataclasses import dataclass

from app.auth import Limiter, Principal, allowed
from app.budget import charge, check_request
from app.metrics import REQUEST_DURATION, REQUESTS
from contract.errors import (
    ConflictError,
    JobTimeoutError,
    Outcome,
    QueueFullError,
    UnknownJobError,
    error_for_outcome,
)
from contract.schemas import JobState, JobStatus, SolveRequest, SolveResult
from contract.settings import Settings
from jobqueue.protocol import FINAL_STATES, JobQueue, deadline_for

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


def wait_limit_s(request: SolveRequest, settings: Settings) -> float:
    """How long the gateway waits for a job it has just submitted: until the job's own
    deadline (the queue's one rule, `deadline_for`), plus the grace in which the
    worker's timeout outcome, with its reason, normally arrives first."""
    now = time.time()
    return deadline_for(request, now, settings.default_timeout_s) - now + WAIT_GRACE_S


def deadline_passed(job_id: str, waited_s: float) -> JobTimeoutError:
    """The gateway stopped waiting (`wait_limit_s`); the job keeps its state to poll."""
    return JobTimeoutError(
        f"Job {job_id} did not finish by its deadline ({waited_s - WAIT_GRACE_S:g} s); "
        f"poll GET /jobs/{job_id} for its outcome."
    )


def owner_id(principal: Principal) -> str:
    """The namespace of a caller's jobs: its key's id (a hex digest, so it has no
    `:`), or `anonymous` with keys off. Never the key's free-text name."""
    return principal.key_hash or "anonymous"


def _cache_key(request: SolveRequest, owner: str, generation: str) -> str:
    """Per key and per adapter generation: one key never receives another key's live
    job, and an answer cached before an adapter change is not served after it."""
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    return f"{owner}:cache:{generation}:{digest}"


def thoughts_hidden(result: SolveResult) -> SolveResult:
    """The result without hidden thoughts (the field and the trace's `thoughts` detail)."""
    trace = result.trace
    if trace is not None:
        trace = tuple(
            event.model_copy(
                update={"detail": {k: v for k, v in event.detail.items() if k != "thoughts"}}
            )
            if "thoughts" in event.detail
            else event
            for event in trace
        )
    return result.model_copy(update={"thoughts": None, "trace": trace})


def visible_result(result: SolveResult, principal: Principal) -> SolveResult:
    """Thoughts reach only a caller holding `reveal_thoughts` when it reads them, not
    only when it submitted (a key can lose the scope in between)."""
    if "reveal_thoughts" in principal.scopes:
        return result
    return thoughts_hidden(result)


@dataclass
class Submitter:
    """One door's way to take work, built by the same dependency for `/solve`, `/jobs`
    and `/v1/chat/completions` (app/deps.py `SubmitDep`), so every door runs the same
    checks in the same order: permissions, cost, idempotency replay, token budget,
    enqueue with the owner."""

    queue: JobQueue
    settings: Settings
    principal: Principal
    door: str  # bounded: solve, jobs, openai
    limiter: Limiter | None = None
    idempotency_key: str | None = None
    cache_generation: str = "0"
    # The request span's W3C trace context (contract/telemetry.TraceRequests): the job
    # carries it, so the worker's spans join the request's trace. None: traces off.
    trace_context: dict[str, str] | None = None

    async def submit(self, request: SolveRequest) -> str:
        """Check, then enqueue. A replayed `Idempotency-Key` (same body) or a cached
        request returns its job without being charged again; a cached failure is not
        reused. Both are scoped to the caller's key id."""
        allowed(self.principal, reveal_thoughts=request.reveal_thoughts)
        cost = check_request(request, self.settings, self.door)
        owner = owner_id(self.principal)
        key = None
        if self.idempotency_key is not None:
            key = f"{owner}:{self.idempotency_key}"
        elif self.settings.result_cache:
            key = _cache_key(request, owner, self.cache_generation)
        try:
            known = await self.queue.find(key) if key is not None else None
            if known is not None and (
                self.idempotency_key is not None
                or (await self.queue.status(known)).status != JobState.failed
            ):
                # Replays are free; the queue still refuses another body under the key.
                return await self._enqueue(request, key)
            await charge(self.limiter, self.principal, cost, self.door)
            if known is not None:  # a cached failure: run it again, uncached
                key = None
            return await self._enqueue(request, key)
        except QueueFullError:
            REQUESTS.labels(strategy=request.strategy.name, outcome="rejected").inc()
            raise

    async def _enqueue(self, request: SolveRequest, key: str | None) -> str:
        """The job under `key`, submitted as this caller's (owner, name, trace context)."""
        return await self.queue.submit(
            request,
            key,
            self.principal.key_hash,
            trace_context=self.trace_context,
            owner_name=self.principal.name,
        )

    async def solve(
        self,
        request: SolveRequest,
        disconnected: Callable[[], Awaitable[None]] | None = None,
    ) -> SolveResult:
        """Submit, then wait until the job finishes or its deadline passes.

        The deadline is the job's own (fixed at submit, `timeout_s` or the default), so
        the client's wait and the worker's work end together; the small grace lets the
        worker's timeout outcome, with its reason, arrive first. `disconnected` resolves
        when the client goes away: the job is then cancelled, not left running.
        """
        strategy = request.strategy.name
        started = time.perf_counter()
        job_id = await self.submit(request)
        timeout = wait_limit_s(request, self.settings)
        status = await _wait_or_cancel(self.queue, job_id, timeout, disconnected)
        REQUEST_DURATION.labels(strategy=strategy).observe(time.perf_counter() - started)
        if status.status == JobState.succeeded and status.result is not None:
            REQUESTS.labels(strategy=strategy, outcome="ok").inc()
            return visible_result(status.result, self.principal)
        if status.status == JobState.failed:
            outcome = status.error_code or Outcome.internal
            REQUESTS.labels(strategy=strategy, outcome=REQUEST_OUTCOMES[outcome]).inc()
            raise error_for_outcome(outcome, status.error or f"Job {job_id} failed.")
        REQUESTS.labels(strategy=strategy, outcome="timeout").inc()
        raise deadline_passed(job_id, timeout)


async def owned_status(queue: JobQueue, job_id: str, principal: Principal) -> JobStatus:
    """A job's status for its owner only: another key's job is a 404, exactly as an
    unknown one, so ids cannot be probed. Thoughts follow `visible_result`."""
    if await queue.owner(job_id) != principal.key_hash:
        raise UnknownJobError(f"No job with id {job_id!r} (unknown, or its result expired).")
    status = await queue.status(job_id)
    if status.result is not None:
        status = status.model_copy(update={"result": visible_result(status.result, principal)})
    return status


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


async def cancel(queue: JobQueue, job_id: str, principal: Principal) -> JobStatus:
    """`DELETE /jobs/{id}` by the job's owner: a finished job is a 409 (nothing left
    to cancel)."""
    before = await owned_status(queue, job_id, principal)
    if before.status in FINAL_STATES:
        raise ConflictError(
            f"Job {job_id} has already finished ({before.status.value}); nothing to cancel."
        )
    status = await queue.cancel(job_id)
    REQUESTS.labels(strategy="unknown", outcome="cancelled").inc()
    return status.model_copy(
        update={"result": status.result and visible_result(status.result, principal)}
    )
