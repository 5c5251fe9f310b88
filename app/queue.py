"""The gateway/worker boundary: a queue of jobs and a store of their states and results.

Routers submit and wait; workers claim and record. Both sides see only the `JobQueue`
protocol, so the embedded in-process queue and a Redis-backed one are interchangeable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.errors import QueueFullError, UnknownJobError
from app.schemas import JobState, JobStatus, SolveRequest, SolveResult

ErrorCode = Literal["timeout", "worker_error", "shutdown"]


@dataclass
class Job:
    """A claimed unit of work."""

    id: str
    request: SolveRequest
    submitted_at: float = field(default_factory=time.time)  # wall clock: crosses processes


class JobQueue(Protocol):
    async def submit(self, request: SolveRequest) -> str:
        """Accept a job or raise `QueueFullError`; an accepted job is never dropped."""
        ...

    async def claim(self) -> Job:
        """Block until a job is available and hand it to one worker."""
        ...

    async def mark_running(self, job_id: str) -> None: ...

    async def complete(self, job_id: str, result: SolveResult) -> None: ...

    async def fail(self, job_id: str, error: str, code: ErrorCode = "worker_error") -> None: ...

    async def status(self, job_id: str) -> JobStatus: ...

    async def wait(self, job_id: str, timeout: float) -> JobStatus:
        """The job's status once it has finished, or as it stands after `timeout`."""
        ...

    def depth(self) -> int: ...


@dataclass
class _Record:
    status: JobStatus
    done: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None


class InProcessQueue:
    """The embedded default: an asyncio queue plus an in-memory store with a TTL.

    Bounded: past `max_depth` queued jobs, `submit` refuses (backpressure) instead of
    letting memory and latency grow without limit.
    """

    def __init__(self, max_depth: int = 1024, result_ttl_s: float = 3600.0):
        self._pending: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_depth)
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._ttl = result_ttl_s

    async def submit(self, request: SolveRequest) -> str:
        job = Job(id=uuid.uuid4().hex, request=request)
        try:
            self._pending.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(
                f"The queue holds {self._pending.maxsize} jobs, its limit; retry shortly."
            ) from None
        self._records[job.id] = _Record(JobStatus(id=job.id, status=JobState.queued))
        return job.id

    async def claim(self) -> Job:
        return await self._pending.get()

    async def mark_running(self, job_id: str) -> None:
        self._record(job_id).status.status = JobState.running

    async def complete(self, job_id: str, result: SolveResult) -> None:
        self._finish(job_id, JobStatus(id=job_id, status=JobState.succeeded, result=result))

    async def fail(self, job_id: str, error: str, code: ErrorCode = "worker_error") -> None:
        self._finish(
            job_id, JobStatus(id=job_id, status=JobState.failed, error=error, error_code=code)
        )

    async def status(self, job_id: str) -> JobStatus:
        return self._record(job_id).status.model_copy()

    async def wait(self, job_id: str, timeout: float) -> JobStatus:
        record = self._record(job_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(record.done.wait(), timeout)
        return record.status.model_copy()

    def depth(self) -> int:
        return self._pending.qsize()

    def _record(self, job_id: str) -> _Record:
        record = self._records.get(job_id)
        if record is None:
            raise UnknownJobError(f"No job with id {job_id!r} (unknown, or its result expired).")
        return record

    def _finish(self, job_id: str, status: JobStatus) -> None:
        record = self._record(job_id)
        if record.done.is_set():  # idempotent: the first recorded outcome stands
            return
        record.status = status
        record.finished_at = time.monotonic()
        record.done.set()
        self._records.move_to_end(job_id)
        self._expire()

    def _expire(self) -> None:
        """Drop finished records past their TTL (a scan: the embedded store stays small)."""
        now = time.monotonic()
        for job_id in list(self._records):
            record = self._records[job_id]
            if record.finished_at is not None and now - record.finished_at > self._ttl:
                del self._records[job_id]
