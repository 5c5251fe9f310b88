"""The distributed queue: Redis Streams with one consumer group of workers.

Semantics (issue: distributed worker pool):
- at-least-once delivery: a job stays in the stream's pending list until a worker
  records an outcome and acks it; result writes are idempotent (first outcome stands);
- crash recovery: a worker heartbeats its in-flight entries (XCLAIM resets their idle
  time); an entry idle past the visibility timeout belongs to a dead worker and is
  reclaimed (XAUTOCLAIM) and run again by another worker, up to `max_attempts`;
- bounded: `submit` refuses past `max_depth` unfinished jobs;
- results live in a hash per job with a TTL.

Keys, all under one prefix: `P:jobs` (stream), `P:job:ID` (hash: request, status,
result, ...), `P:job:ID:events` (list of progress events), `P:events` (pub/sub
channel that wakes waiters), `P:idem:KEY` (idempotency keys), `P:owner:OWNER:jobs`
(sorted set: an owner's newest job ids by submit time, for its list of jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from contract.errors import Outcome, QueueFullError, UnknownJobError, outcome_of
from contract.schemas import JobState, JobStatus, SolveRequest, SolveResult
from jobqueue.metrics import JOB_RETRIES, REDIS_PERSISTENT, WORKER_HEARTBEAT
from jobqueue.protocol import (
    CANCELLED_MESSAGE,
    FINAL_STATES,
    RECENT_KEPT,
    Job,
    JobSummary,
    QueueStats,
    deadline_for,
    idempotency_conflict,
)

log = logging.getLogger(__name__)
GROUP = "workers"
# Every Redis call answers or fails within this (longer than the 1 s blocking reads),
# so a frozen Redis costs an API call a few seconds and a 503, never a hang.
SOCKET_TIMEOUT_S = 2.0
RECLAIM_SCAN = 16  # idle entries looked at per reclaim pass


def _load_scripts() -> dict[str, str]:
    """The Lua sections of jobqueue/scripts.lua by name."""
    text = resources.files("jobqueue").joinpath("scripts.lua").read_text()
    sections = re.split(r"^-- name: (\w+)\n", text, flags=re.M)
    return dict(zip(sections[1::2], sections[2::2], strict=True))


_SCRIPTS = _load_scripts()


def connect(url: str) -> aioredis.Redis:
    """A client whose calls fail fast when Redis is down, instead of hanging requests,
    and retry once on a dropped connection: after a Redis restart every pooled
    connection is stale, and one reconnect is all the first request needs. A timeout
    is not retried: a frozen Redis would only double the wait."""
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=1.5, socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=15,
        # Only a dropped connection is retried (redis-py's default retries timeouts too).
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1,
                    supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
        # No CLIENT SETINFO round trip on every new connection: one more wait when frozen.
        lib_name=None, lib_version=None,
    )  # fmt: skip


class RedisQueue:
    """`JobQueue` on Redis Streams. One instance per process; a worker's instance also
    heartbeats the entries it has claimed."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "sciserve",
        max_depth: int = 1024,
        result_ttl_s: float = 3600.0,
        default_timeout_s: float = 300.0,
        visibility_timeout_s: float = 30.0,
        max_attempts: int = 3,
        consumer: str | None = None,
    ):
        # Typed loosely: redis-py's stubs cannot express decode_responses=True (str, not bytes).
        self.redis: Any = client
        self.prefix = prefix
        self.stream = f"{prefix}:jobs"
        self.channel = f"{prefix}:events"
        self.max_depth = max_depth
        self.result_ttl_s = int(result_ttl_s)
        self.default_timeout_s = default_timeout_s
        self._cancelled: asyncio.Queue[str] = asyncio.Queue()
        self.visibility_timeout_s = visibility_timeout_s
        self.max_attempts = max_attempts
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._inflight: dict[str, str] = {}  # job id -> stream entry id, claimed here
        self._finishing: set[str] = set()  # outcomes being written by this worker
        self._group_ready = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._submit = self.redis.register_script(_SCRIPTS["submit"])
        self._take_script = self.redis.register_script(_SCRIPTS["take"])
        self._record_outcome = self.redis.register_script(_SCRIPTS["record_outcome"])
        self._last_reclaim = 0.0
        self._closed = False
        self._weights: dict[str, int] = {}  # job id -> expected engine sequences (stats)

    # --- keys ---
    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _events_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def _owner_key(self, owner: str | None) -> str:
        """An owner's list of jobs; `-` for jobs submitted without keys. An owner is a
        key's hash, never its free-text name."""
        return f"{self.prefix}:owner:{owner or '-'}:jobs"

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:  # BUSYGROUP: another process made it first
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True
        await self._warn_without_persistence()

    async def _warn_without_persistence(self) -> None:
        """Accepted jobs and API keys live in Redis: one without AOF or snapshots loses
        them all on a restart. Say so once, loudly; a managed Redis that hides CONFIG
        is given the benefit of the doubt."""
        try:
            config = await self.redis.config_get("appendonly")
            config.update(await self.redis.config_get("save"))
        except (RedisError, OSError):
            return
        persistent = config.get("appendonly") == "yes" or bool(config.get("save"))
        REDIS_PERSISTENT.set(1 if persistent else 0)
        if not persistent:
            log.warning(
                "Redis at %s has no persistence (appendonly no, save ''): a Redis restart "
                "loses every accepted job and API key. Run it with --appendonly yes.",
                self.redis.connection_pool.connection_kwargs.get("host", "?"),
            )

    # --- gateway side ---
    async def submit(
        self,
        request: SolveRequest,
        idempotency_key: str | None = None,
        owner: str | None = None,
        trace_context: Mapping[str, str] | None = None,
        *,
        owner_name: str | None = None,
    ) -> str:
        await self._ensure_group()
        job_id = uuid.uuid4().hex
        idem = f"{self.prefix}:idem:{idempotency_key or ''}"
        now = time.time()
        deadline = deadline_for(request, now, self.default_timeout_s)
        outcome, known = await self._submit(
            keys=[self.stream, self._job_key(job_id), idem, self._owner_key(owner)],
            args=[self.max_depth, job_id, request.model_dump_json(), repr(now),
                  self.result_ttl_s, "1" if idempotency_key is not None else "0",
                  repr(deadline), f"{self.prefix}:job:", owner or "",
                  json.dumps(dict(trace_context)) if trace_context else "",
                  owner_name or "", RECENT_KEPT],
        )  # fmt: skip
        if int(outcome) == 3:
            raise idempotency_conflict(idempotency_key or "")
        if int(outcome) == 0:
            raise QueueFullError(
                f"The queue holds {self.max_depth} unfinished jobs, its limit; retry shortly."
            )
        return str(known)

    async def find(self, idempotency_key: str) -> str | None:
        known = await self.redis.get(f"{self.prefix}:idem:{idempotency_key}")
        if known is None or not await self.redis.exists(self._job_key(known)):
            return None
        return str(known)

    async def owner(self, job_id: str) -> str | None:
        fields = await self.redis.hmget(self._job_key(job_id), ["id", "owner"])
        if fields[0] is None:
            raise UnknownJobError(f"No job with id {job_id!r} (unknown, or its result expired).")
        return fields[1] or None

    async def status(self, job_id: str) -> JobStatus:
        fields = await self.redis.hgetall(self._job_key(job_id))
        if not fields:
            raise UnknownJobError(f"No job with id {job_id!r} (unknown, or its result expired).")
        return self._status_of(job_id, fields)

    async def summary(self, job_id: str) -> JobSummary:
        fields = await self.redis.hgetall(self._job_key(job_id))
        if not fields:
            raise UnknownJobError(f"No job with id {job_id!r} (unknown, or its result expired).")
        return self._summary_of(job_id, fields)

    async def recent(self, owner: str | None, limit: int) -> list[JobSummary]:
        index = self._owner_key(owner)
        job_ids = await self.redis.zrevrange(index, 0, min(limit, RECENT_KEPT) - 1)
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self._job_key(job_id))
        found, gone = [], []
        for job_id, fields in zip(job_ids, await pipe.execute(), strict=True):
            if fields:
                found.append(self._summary_of(job_id, fields))
            else:
                gone.append(job_id)  # its record expired: the list forgets it too
        if gone:
            await self.redis.zrem(index, *gone)
        return found

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(self._events_key(job_id), 0, -1)]

    def _summary_of(self, job_id: str, fields: dict[str, str]) -> JobSummary:
        return JobSummary(
            id=job_id,
            request=SolveRequest.model_validate_json(fields["request"]),
            submitted_at=float(fields.get("submitted_at") or 0.0),
            owner_name=fields.get("owner_name") or None,
            status=self._status_of(job_id, fields),
        )

    @staticmethod
    def _status_of(job_id: str, fields: dict[str, str]) -> JobStatus:
        result = fields.get("result")
        return JobStatus(
            id=job_id,
            status=JobState(fields["status"]),
            result=SolveResult.model_validate_json(result) if result else None,
            error=fields.get("error") or None,
            error_code=outcome_of(fields.get("error_code")),
        )

    async def wait(self, job_id: str, timeout: float) -> JobStatus:
        """Woken by pub/sub; re-reads the hash at least every second, so a message lost
        while Redis was away costs at most a second."""
        deadline = time.monotonic() + timeout
        with self._watch(job_id) as inbox:
            while True:
                status = await self.status(job_id)
                remaining = deadline - time.monotonic()
                if status.status in FINAL_STATES or remaining <= 0:
                    return status
                with contextlib.suppress(TimeoutError):
                    event = await asyncio.wait_for(inbox.get(), min(remaining, 1.0))
                    if event.get("type") == "done" and "final" in event:
                        return JobStatus.model_validate(event["final"])

    async def events(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """History from the job's event list, then live events until `done`."""
        with self._watch(job_id) as inbox:
            sent = 0
            while True:
                history = await self.redis.lrange(self._events_key(job_id), sent, -1)
                if sent == 0 and not history and not await self.redis.exists(self._job_key(job_id)):
                    raise UnknownJobError(f"No job with id {job_id!r}.")
                for raw in history:
                    sent += 1
                    event = json.loads(raw)
                    yield event
                    if event.get("type") == "done":
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(inbox.get(), 1.0)

    @contextlib.contextmanager
    def _watch(self, job_id: str) -> Any:
        self._start_listener()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._watchers[job_id].add(inbox)
        try:
            yield inbox
        finally:
            self._watchers[job_id].discard(inbox)
            if not self._watchers[job_id]:
                del self._watchers[job_id]

    def _start_listener(self) -> None:
        if self._listener_task is None or self._listener_task.done():
            self._listener_task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        """One subscription per process fans events out to local waiters."""
        while not self._closed:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    while not self._closed:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is None:
                            continue
                        event = json.loads(message["data"])
                        self._notice_finished_elsewhere(event)
                        for inbox in list(self._watchers.get(event.get("job_id", ""), ())):
                            inbox.put_nowait(event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:  # Redis away: waiters poll meanwhile
                log.debug("event listener reconnecting after %s", exc)
                await asyncio.sleep(1.0)

    def _notice_finished_elsewhere(self, event: dict[str, Any]) -> None:
        """A job this worker runs was finished by someone else (cancelled): report it.
        This worker's own outcomes never land here: `_record` marks them finishing."""
        job_id = event.get("job_id")
        if (
            event.get("type") == "done"
            and job_id in self._inflight
            and job_id not in self._finishing
        ):
            self._cancelled.put_nowait(job_id)

    async def cancel(self, job_id: str) -> JobStatus:
        status = await self.status(job_id)  # 404 for an unknown job
        if status.status not in FINAL_STATES:
            await self.fail(job_id, CANCELLED_MESSAGE, Outcome.cancelled)
        return await self.status(job_id)

    async def cancellations(self) -> AsyncIterator[str]:
        self._start_listener()
        while True:
            yield await self._cancelled.get()

    async def stats(self) -> QueueStats:
        await self._ensure_group()
        depth = await self.redis.xlen(self.stream)
        oldest = await self.redis.xrange(self.stream, count=1)
        age = 0.0
        if oldest:
            entry_ms = int(oldest[0][0].split("-")[0])
            age = max(0.0, time.time() - entry_ms / 1000)
        return QueueStats(
            depth=depth, oldest_age_s=age, expected_sequences=await self._backlog_sequences()
        )

    async def _backlog_sequences(self) -> int:
        """Expected engine sequences of the unfinished jobs (the stream's entries).

        Bounded: submit keeps the stream at `max_depth` entries at most. A job's weight
        never changes, so it is read from its request once per process and cached; each
        scrape then costs one XRANGE plus a read of the jobs it has not seen yet.
        """
        entries = await self.redis.xrange(self.stream, count=self.max_depth)
        job_ids = [fields["id"] for _, fields in entries if "id" in fields]
        unseen = [job_id for job_id in job_ids if job_id not in self._weights]
        if unseen:
            pipe = self.redis.pipeline(transaction=False)
            for job_id in unseen:
                pipe.hget(self._job_key(job_id), "request")
            for job_id, raw in zip(unseen, await pipe.execute(), strict=True):
                if raw is not None:  # else expired: it weighs nothing
                    request = SolveRequest.model_validate_json(raw)
                    self._weights[job_id] = request.strategy.expected_engine_sequences()
        live = set(job_ids)
        self._weights = {k: v for k, v in self._weights.items() if k in live}
        return sum(self._weights.values())

    async def health(self) -> tuple[bool, str]:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            # /readyz is public: the reason names no host or port; the log does.
            log.warning("Redis health check failed: %s", exc)
            return False, f"Redis is unreachable ({type(exc).__name__})."
        return True, "redis ok"

    # --- worker side ---
    async def claim(self, timeout: float) -> Job | None:
        await self._ensure_group()
        self._start_heartbeat()
        try:
            if time.monotonic() - self._last_reclaim > self.visibility_timeout_s / 4:
                job = await self._reclaim_one()
                if job is not None:
                    return job  # more may be waiting: look again on the next claim
                self._last_reclaim = time.monotonic()
            response = await self.redis.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=1, block=max(1, int(timeout * 1000))
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # Redis lost the group (restarted): make it again
            return None
        for _stream, entries in response or ():
            for entry_id, fields in entries:
                job = await self._take(entry_id, fields["id"], reclaimed=False)
                if job is not None:
                    return job
        return None

    async def _reclaim_one(self) -> Job | None:
        """Take over one entry whose worker is gone: idle past the visibility timeout
        AND its worker's heartbeat key expired. The second condition is the fence that
        keeps a live worker's job from being run twice when its entry looks idle (a
        Redis restart, a heartbeat delayed by a busy loop or a short outage)."""
        min_idle_ms = int(self.visibility_timeout_s * 1000)
        pending = await self.redis.xpending_range(
            self.stream, GROUP, min="-", max="+", count=RECLAIM_SCAN, idle=min_idle_ms
        )
        for entry in pending:
            owner = entry["consumer"]
            if owner != self.consumer and await self.redis.exists(self._worker_key(owner)):
                continue  # its worker is alive: the job is running, not lost
            claimed = await self.redis.xclaim(
                self.stream, GROUP, self.consumer, min_idle_ms, [entry["message_id"]]
            )
            for entry_id, fields in claimed:
                if not fields:  # the entry was deleted meanwhile
                    await self._ack(entry_id)
                    continue
                job = await self._take(entry_id, fields["id"], reclaimed=True)
                if job is not None:
                    return job
        return None

    def _worker_key(self, consumer: str) -> str:
        return f"{self.prefix}:worker:{consumer}"

    async def _take(self, entry_id: str, job_id: str, *, reclaimed: bool) -> Job | None:
        """Turn a delivered entry into a Job, or settle it if there is nothing to run."""
        running = json.dumps({"job_id": job_id, "type": "status", "status": "running"})
        taken = await self._take_script(
            keys=[self._job_key(job_id), self._events_key(job_id)],
            args=[running, self.result_ttl_s, self.channel],
        )
        if not taken:
            await self._ack(entry_id)  # expired, or finished by an earlier delivery
            return None
        request = SolveRequest.model_validate_json(taken[0])
        submitted_at, attempt = float(taken[1]), int(taken[2])
        # A job stored by an older release has no deadline: derive it the same way.
        deadline = (
            float(taken[3])
            if taken[3]
            else deadline_for(request, submitted_at, self.default_timeout_s)
        )
        # A job stored by an older release has no trace context (nor the 5th field).
        trace_context = json.loads(taken[4]) if len(taken) > 4 and taken[4] else None
        if reclaimed:
            JOB_RETRIES.inc()
            log.warning("reclaimed job %s (attempt %d)", job_id, attempt)
        self._inflight[job_id] = entry_id
        if attempt > self.max_attempts:
            await self.fail(job_id, f"The job was given up after {self.max_attempts} attempts "
                            "whose workers or engines died.")  # fmt: skip
            return None
        return Job(
            id=job_id, request=request, deadline=deadline, submitted_at=submitted_at,
            attempt=attempt, trace_context=trace_context,
        )  # fmt: skip

    def _start_heartbeat(self) -> None:
        if self._heartbeat_task is None or self._heartbeat_task.done():
            self._heartbeat_task = asyncio.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        """Keep claimed entries fresh (idle time 0) so no one reclaims live work."""
        interval = self.visibility_timeout_s / 3
        # A flag, not only cancellation: redis-py can turn a cancel inside a command
        # into a connection error, which this loop would survive.
        while not self._closed:
            try:
                entries = list(self._inflight.values())
                if entries:
                    await self.redis.xclaim(
                        self.stream, GROUP, self.consumer, 0, entries, justid=True
                    )
                now = time.time()
                await self.redis.set(
                    self._worker_key(self.consumer),
                    repr(now),
                    px=max(1, int(self.visibility_timeout_s * 1000)),
                )
                WORKER_HEARTBEAT.set(now)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(interval)

    async def complete(self, job_id: str, result: SolveResult) -> None:
        await self._record(JobStatus(id=job_id, status=JobState.succeeded, result=result))

    async def fail(self, job_id: str, error: str, code: Outcome = Outcome.internal) -> None:
        await self._record(
            JobStatus(id=job_id, status=JobState.failed, error=error, error_code=code)
        )

    async def _record(self, final: JobStatus) -> None:
        """Write the outcome. The entry stays in flight (heartbeated) until the write
        succeeds, so a caller that retries through a Redis outage never loses the job,
        and this worker's own `done` event is not taken for a cancellation."""
        job_id = final.id
        entry_id = self._inflight.get(job_id, "")
        done = {"job_id": job_id, "type": "done", "status": final.status.value}
        self._finishing.add(job_id)
        try:
            await self._record_outcome(
                keys=[self._job_key(job_id), self._events_key(job_id), self.stream],
                args=[final.status.value, final.result.model_dump_json() if final.result else "",
                      final.error or "", final.error_code or "", self.result_ttl_s,
                      repr(time.time()), entry_id, json.dumps(done), self.channel,
                      json.dumps({**done, "final": final.model_dump(mode="json")})],
            )  # fmt: skip
            self._inflight.pop(job_id, None)
        finally:
            self._finishing.discard(job_id)

    async def release(self, job_id: str, *, count_attempt: bool = False) -> None:
        """Re-queue as a fresh entry and settle the old one, in one transaction."""
        entry_id = self._inflight.pop(job_id, None)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._job_key(job_id), "status", JobState.queued.value)
            if not count_attempt:  # a worker shutting down: the attempt is not spent
                pipe.hincrby(self._job_key(job_id), "attempts", -1)
            pipe.xadd(self.stream, {"id": job_id})
            if entry_id is not None:
                pipe.xack(self.stream, GROUP, entry_id)
                pipe.xdel(self.stream, entry_id)
            await pipe.execute()

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)  # the stream holds only unfinished jobs
            await pipe.execute()

    async def publish(self, job_id: str, event: dict[str, Any]) -> None:
        payload = json.dumps({"job_id": job_id, **event})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(self._events_key(job_id), payload)
            pipe.expire(self._events_key(job_id), self.result_ttl_s)
            pipe.publish(self.channel, payload)
            await pipe.execute()

    async def close(self) -> None:
        """Stop heartbeating and listening. Claimed, unfinished jobs stay pending and
        are reclaimed by another worker after the visibility timeout."""
        self._closed = True
        for task in (self._heartbeat_task, self._listener_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.redis.aclose()
