"""The embedded default queue: an asyncio queue plus an in-memory store with a TTL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.errors import Outcome, QueueFullError, UnknownJobError
from contract.schemas import JobState, JobStatus, SolveRequest, SolveResult
from jobqueue.protocol import (
    CANCELLED_MESSAGE,
    RECENT_KEPT,
    Job,
    JobSummary,
    QueueStats,
    deadline_for,
    idempotency_conflict,
)


@dataclass
class _Record:
    job: Job
    status: JobStatus
    done: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    owner_name: str | None = None  # the submitting key's name, to show


class InProcessQueue:
    """The embedded default: an asyncio queue plus an in-memory store with a TTL.

    Bounded: past `max_depth` queued jobs, `submit` refuses (backpressure) instead of
    letting memory and latency grow without limit. Jobs live as long as the process.
    """

    def __init__(
        self, max_depth: int = 1024, result_ttl_s: float = 3600.0, default_timeout_s: float = 300.0
    ):
        self._pending: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_depth)
        self._cancelled: asyncio.Queue[str] = asyncio.Queue()
        self.default_timeout_s = default_timeout_s
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._idempotency: dict[str, str] = {}
        self._ttl = result_ttl_s

    async def submit(
        self,
        request: SolveRequest,
        idempotency_key: str | None = None,
        owner: str | None = None,
        trace_context: Mapping[str, str] | None = None,
        *,
        owner_name: str | None = None,
    ) -> str:
        known = await self.find(idempotency_key) if idempotency_key is not None else None
        if known is not None:
            if self._records[known].job.request != request:
                raise idempotency_conflict(idempotency_key or "")
            return known
        now = time.time()
        job = Job(
            id=uuid.uuid4().hex,
            request=request,
            deadline=deadline_for(request, now, self.default_timeout_s),
            submitted_at=now,
            owner=owner,
            trace_context=dict(trace_context) if trace_context else None,
        )
        try:
            self._pending.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(
                f"The queue holds {self._pending.maxsize} jobs, its limit; retry shortly."
            ) from None
        self._records[job.id] = _Record(
            job, JobStatus(id=job.id, status=JobState.queued), owner_name=owner_name
        )
        if idempotency_key is not None:
            self._idempotency[idempotency_key] = job.id
        return job.id

    async def find(self, idempotency_key: str) -> str | None:
        known = self._idempotency.get(idempotency_key)
        return known if known in self._records else None

    async def owner(self, job_id: str) -> str | None:
        return self._record(job_id).job.owner

    async def claim(self, timeout: float) -> Job | None:
        end = time.monotonic() + timeout
        while True:
            try:
                job = await asyncio.wait_for(self._pending.get(), max(0.0, end - time.monotonic()))
            except TimeoutError:
                return None
            record = self._records.get(job.id)
            if record is not None and not record.done.is_set():
                break  # else cancelled (or expired) while queued: nothing to run
        record.status.status = JobState.running
        await self.publish(job.id, {"type": "status", "status": "running"})
        return job

    async def complete(self, job_id: str, result: SolveResult) -> None:
        await self._finish(job_id, JobStatus(id=job_id, status=JobState.succeeded, result=result))

    async def fail(self, job_id: str, error: str, code: Outcome = Outcome.internal) -> None:
        await self._finish(
            job_id, JobStatus(id=job_id, status=JobState.failed, error=error, error_code=code)
        )

    async def cancel(self, job_id: str) -> JobStatus:
        record = self._record(job_id)
        was_running = record.status.status == JobState.running
        await self.fail(job_id, CANCELLED_MESSAGE, Outcome.cancelled)
        if was_running and record.status.error_code == Outcome.cancelled:
            self._cancelled.put_nowait(job_id)
        return record.status.model_copy()

    async def cancellations(self) -> AsyncIterator[str]:
        while True:
            yield await self._cancelled.get()

    async def release(self, job_id: str, *, count_attempt: bool = False) -> None:
        # One process: a dead engine ends this queue too, so no attempt limit here.
        record = self._record(job_id)
        if record.done.is_set():
            return
        record.status.status = JobState.queued
        record.job.attempt += 1
        try:
            self._pending.put_nowait(record.job)
        except asyncio.QueueFull:  # the freed slot was taken meanwhile: say so, never drop
            await self.fail(job_id, "The worker shut down and the queue was full.")

    async def publish(self, job_id: str, event: dict[str, Any]) -> None:
        record = self._record(job_id)
        async with record.changed:
            record.events.append(event)
            record.changed.notify_all()

    async def events(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        record = self._record(job_id)
        sent = 0
        while True:
            async with record.changed:
                count = sent
                await record.changed.wait_for(lambda: len(record.events) > count)  # noqa: B023
                fresh = record.events[sent:]
            sent += len(fresh)
            for event in fresh:
                yield event
                if event.get("type") == "done":
                    return

    async def status(self, job_id: str) -> JobStatus:
        return self._record(job_id).status.model_copy()

    async def summary(self, job_id: str) -> JobSummary:
        return self._summary(self._record(job_id))

    async def recent(self, owner: str | None, limit: int) -> list[JobSummary]:
        mine = [r for r in self._records.values() if r.job.owner == owner]
        mine.sort(key=lambda r: r.job.submitted_at, reverse=True)
        return [self._summary(r) for r in mine[: min(limit, RECENT_KEPT)]]

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        return list(self._record(job_id).events)

    @staticmethod
    def _summary(record: _Record) -> JobSummary:
        job = record.job
        return JobSummary(
            job.id, job.request, job.submitted_at, record.owner_name, record.status.model_copy()
        )

    async def wait(self, job_id: str, timeout: float) -> JobStatus:
        record = self._record(job_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(record.done.wait(), timeout)
        return record.status.model_copy()

    async def stats(self) -> QueueStats:
        now = time.time()
        queued = [
            r.job.submitted_at for r in self._records.values() if r.status.status == JobState.queued
        ]
        live = (JobState.queued, JobState.running)
        unfinished = [r for r in self._records.values() if r.status.status in live]
        backlog = sum(r.job.request.strategy.expected_engine_sequences() for r in unfinished)
        return QueueStats(
            depth=len(unfinished),  # queued or running, as the Redis stream counts them
            oldest_age_s=now - min(queued) if queued else 0.0,
            expected_sequences=backlog,
        )

    async def health(self) -> tuple[bool, str]:
        return True, "in-process queue"

    async def close(self) -> None:
        return None

    def _record(self, job_id: str) -> _Record:
        record = self._records.get(job_id)
        if record is None:
            raise UnknownJobError(f"No job with id {job_id!r} (unknown, or its result expired).")
        return record

    async def _finish(self, job_id: str, status: JobStatus) -> None:
        record = self._record(job_id)
        if record.done.is_set():  # idempotent: the first recorded outcome stands
            return
        record.status = status
        record.finished_at = time.monotonic()
        record.done.set()
        self._records.move_to_end(job_id)
        await self.publish(job_id, {"type": "done", "status": status.status.value})
        self._expire()

    def _expire(self) -> None:
        """Drop finished records past their TTL (a scan: the embedded store stays small)."""
        now = time.monotonic()
        for job_id in list(self._records):
            record = self._records[job_id]
            if record.finished_at is not None and now - record.finished_at > self._ttl:
                del self._records[job_id]
        live = set(self._records)
        for key in [k for k, v in self._idempotency.items() if v not in live]:
            del self._idempotency[key]
