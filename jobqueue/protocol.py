"""The gateway/worker boundary: a queue of jobs and a store of their states and results.

Routers submit and wait; workers claim and record. Both sides see only the `JobQueue`
protocol, so the embedded in-process queue (jobqueue/memory.py) and the Redis queue
(jobqueue/redis_streams.py) are interchangeable.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from contract.errors import IdempotencyConflictError, Outcome
from contract.schemas import JobState, JobStatus, SolveRequest, SolveResult

FINAL_STATES = (JobState.succeeded, JobState.failed)
CANCELLED_MESSAGE = "The job was cancelled before it finished."


def idempotency_conflict(key: str) -> IdempotencyConflictError:
    """`key` is the gateway's namespaced key (`OWNER:KEY`); the caller sees only theirs."""
    return IdempotencyConflictError(
        f"The Idempotency-Key {key.split(':', 1)[-1]!r} was used with a different request "
        "body; use a new key for a different request."
    )


def deadline_for(request: SolveRequest, submitted_at: float, default_timeout_s: float) -> float:
    """A job's one deadline (Unix time), fixed at submit: every stage, engine call and
    tool call gets what remains of it, and a reclaimed job keeps it."""
    return submitted_at + request.timeout_or(default_timeout_s)


@dataclass
class Job:
    """A claimed unit of work."""

    id: str
    request: SolveRequest
    deadline: float  # Unix time, fixed at submit (`deadline_for`)
    submitted_at: float = field(default_factory=time.time)  # wall clock: crosses processes
    attempt: int = 1
    owner: str | None = None  # the submitting API key's id (its hash); None: keys off
    # The W3C trace context (`traceparent`, `tracestate`) of the request that queued the
    # job, so the worker's spans join the gateway's trace (contract/telemetry.py); None:
    # traces off at the gateway.
    trace_context: dict[str, str] | None = None

    def remaining_s(self) -> float:
        return self.deadline - time.time()


@dataclass(frozen=True)
class JobSummary:
    """A job as its trace page and its owner's list of jobs show it: what was asked,
    when, by which key (its name, for people: access goes by `owner`), and its status."""

    id: str
    request: SolveRequest
    submitted_at: float  # Unix time
    owner_name: str | None
    status: JobStatus


# The jobs an owner's list (`JobQueue.recent`) can reach: its newest, within the TTL.
RECENT_KEPT = 200


@dataclass(frozen=True)
class QueueStats:
    depth: int
    oldest_age_s: float
    # Sum of `Strategy.expected_engine_sequences()` over unfinished jobs: the backlog
    # the worker autoscaler scales on (a samples:8 job weighs 8, a direct one 1).
    expected_sequences: int = 0


class JobQueue(Protocol):
    async def submit(
        self,
        request: SolveRequest,
        idempotency_key: str | None = None,
        owner: str | None = None,
        trace_context: Mapping[str, str] | None = None,
        *,
        owner_name: str | None = None,
    ) -> str:
        """Accept a job or raise `QueueFullError`; an accepted job is never dropped.
        A repeated `idempotency_key` returns the first job's id and queues nothing.
        `owner` (the submitting key's id) is stored with the job: only that key may
        read or cancel it. `trace_context` travels with the job to its worker.
        `owner_name` (the key's name) is kept to show, and the job joins its owner's
        list (`recent`)."""
        ...

    async def find(self, idempotency_key: str) -> str | None:
        """The live job an idempotency key names, if any (the gateway charges a new
        job only, never a replay)."""
        ...

    async def owner(self, job_id: str) -> str | None:
        """The key id that submitted the job (None: submitted without keys);
        `UnknownJobError` for an unknown job."""
        ...

    async def claim(self, timeout: float) -> Job | None:
        """The next job for this worker, marked running, or None after `timeout` s."""
        ...

    async def complete(self, job_id: str, result: SolveResult) -> None:
        """Record a result; idempotent: the first recorded outcome stands."""
        ...

    async def fail(self, job_id: str, error: str, code: Outcome = Outcome.internal) -> None:
        """Record a failure with its outcome code; the first recorded outcome stands."""
        ...

    async def cancel(self, job_id: str) -> JobStatus:
        """Finish a queued or running job as `cancelled` (no-op once it has finished)
        and tell the worker running it; returns the job's final status."""
        ...

    def cancellations(self) -> AsyncIterator[str]:
        """For a worker: ids of jobs it runs that were finished elsewhere (cancelled),
        so it can stop spending engine time on them."""
        ...

    async def release(self, job_id: str, *, count_attempt: bool = False) -> None:
        """Hand an unfinished job back to the queue. A worker shutting down does not
        spend one of the job's attempts; a job whose engine died under it does
        (`count_attempt`), so a job that kills every engine ends failed after
        `max_attempts` instead of going round the pool for ever."""
        ...

    async def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Record a progress event for `GET /jobs/{id}/events`."""
        ...

    def events(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """A job's events from the first, live until it finishes."""
        ...

    async def status(self, job_id: str) -> JobStatus: ...

    async def summary(self, job_id: str) -> JobSummary:
        """The job's request, submit time, key name and status (`UnknownJobError` for an
        unknown job)."""
        ...

    async def recent(self, owner: str | None, limit: int) -> list[JobSummary]:
        """The newest `limit` jobs of `owner` whose records are still kept, newest first
        (at most `RECENT_KEPT`)."""
        ...

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        """A job's events so far, without waiting for more."""
        ...

    async def wait(self, job_id: str, timeout: float) -> JobStatus:
        """The job's status once it has finished, or as it stands after `timeout`."""
        ...

    async def stats(self) -> QueueStats: ...

    async def health(self) -> tuple[bool, str]: ...

    async def close(self) -> None: ...
