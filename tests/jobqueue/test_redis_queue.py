"""The Redis queue's semantics against a real Redis: reclaim after a worker dies,
idempotent result writes, attempts limit, idempotency keys, backpressure, TTLs."""

from __future__ import annotations

import asyncio
import time

import pytest

from contract.errors import Outcome, QueueFullError, UnknownJobError
from contract.schemas import JobState, SolveRequest, SolveResult
from jobqueue.metrics import JOB_RETRIES
from jobqueue.redis_streams import RedisQueue, connect
from tests.conftest import REDIS_URL


def _queue(prefix: str, consumer: str, **kwargs: object) -> RedisQueue:
    options: dict[str, object] = {"visibility_timeout_s": 0.5, "result_ttl_s": 60}
    options.update(kwargs)
    return RedisQueue(connect(REDIS_URL), prefix=prefix, consumer=consumer, **options)  # type: ignore[arg-type]


def _result(job_id: str, text: str) -> SolveResult:
    return SolveResult(id=job_id, answer=text, answer_text=text)


async def _dies(queue: RedisQueue) -> None:
    """A worker that stops heartbeating and never acks: its process is gone."""
    await queue.close()


async def test_a_dead_workers_job_is_reclaimed_and_finished_once(redis_prefix: str) -> None:
    gateway, a, b = (_queue(redis_prefix, name) for name in ("gw", "a", "b"))
    job_id = await gateway.submit(SolveRequest(problem="1+1?"))
    job = await a.claim(1)
    assert job is not None and job.id == job_id and job.attempt == 1
    await _dies(a)
    retries = JOB_RETRIES._value.get()
    assert await b.claim(0.1) is None  # not yet idle past the visibility timeout
    await asyncio.sleep(0.6)
    again = await b.claim(1)
    assert again is not None and again.id == job_id and again.attempt == 2
    assert JOB_RETRIES._value.get() == retries + 1
    await b.complete(job_id, _result(job_id, "2"))
    await b.complete(job_id, _result(job_id, "late duplicate"))
    status = await gateway.wait(job_id, 1)
    assert status.status == JobState.succeeded and status.result is not None
    assert status.result.answer == "2"
    assert (await gateway.stats()).depth == 0
    assert await b.redis.xpending(b.stream, "workers") == {
        "pending": 0, "min": None, "max": None, "consumers": []
    }  # fmt: skip
    for queue in (gateway, b):
        await queue.close()


async def test_a_job_whose_workers_keep_dying_is_given_up(redis_prefix: str) -> None:
    gateway = _queue(redis_prefix, "gw", max_attempts=2)
    job_id = await gateway.submit(SolveRequest(problem="1+1?"))
    for name in ("a", "b"):
        worker = _queue(redis_prefix, name, max_attempts=2)
        await asyncio.sleep(0.6)
        assert await worker.claim(1) is not None
        await _dies(worker)
    await asyncio.sleep(0.6)
    last = _queue(redis_prefix, "c", max_attempts=2)
    assert await last.claim(0.2) is None
    status = await gateway.status(job_id)
    assert status.status == JobState.failed and "given up after 2 attempts" in (status.error or "")
    for queue in (gateway, last):
        await queue.close()


async def test_release_hands_the_job_back_without_spending_an_attempt(redis_prefix: str) -> None:
    queue = _queue(redis_prefix, "a")
    job_id = await queue.submit(SolveRequest(problem="1+1?"))
    job = await queue.claim(1)
    assert job is not None
    await queue.release(job_id)
    assert (await queue.status(job_id)).status == JobState.queued
    again = await queue.claim(1)
    assert again is not None and again.id == job_id and again.attempt == 1
    await queue.close()


async def test_a_job_whose_engines_keep_dying_is_given_up(redis_prefix: str) -> None:
    """A hand-back after an engine death spends the attempt: a job that kills every
    engine it meets fails after `max_attempts` instead of circling the pool."""
    queue = _queue(redis_prefix, "a", max_attempts=2)
    job_id = await queue.submit(SolveRequest(problem="1+1?"))
    for attempt in (1, 2):
        job = await queue.claim(1)
        assert job is not None and job.attempt == attempt
        await queue.release(job_id, count_attempt=True)
    assert await queue.claim(0.2) is None
    status = await queue.status(job_id)
    assert status.status == JobState.failed and "given up after 2 attempts" in (status.error or "")
    await queue.close()


async def test_idempotency_key_returns_the_same_job_once(redis_prefix: str) -> None:
    queue = _queue(redis_prefix, "a")
    request = SolveRequest(problem="1+1?")
    ids = await asyncio.gather(*(queue.submit(request, "order-42") for _ in range(5)))
    assert len(set(ids)) == 1
    assert (await queue.stats()).depth == 1
    assert await queue.submit(request, "order-43") != ids[0]
    await queue.close()


async def test_backpressure_refuses_past_max_depth(redis_prefix: str) -> None:
    queue = _queue(redis_prefix, "a", max_depth=2)
    for _ in range(2):
        await queue.submit(SolveRequest(problem="1+1?"))
    with pytest.raises(QueueFullError, match="limit"):
        await queue.submit(SolveRequest(problem="1+1?"))
    await queue.close()


async def test_results_carry_a_ttl_and_unknown_jobs_are_404(redis_prefix: str) -> None:
    queue = _queue(redis_prefix, "a", result_ttl_s=30)
    job_id = await queue.submit(SolveRequest(problem="1+1?"))
    await queue.claim(1)
    await queue.fail(job_id, "boom")
    assert 0 < await queue.redis.ttl(f"{redis_prefix}:job:{job_id}") <= 30
    with pytest.raises(UnknownJobError):
        await queue.status("nope")
    await queue.close()


async def test_events_replay_history_then_follow_live(redis_prefix: str) -> None:
    gateway, worker = _queue(redis_prefix, "gw"), _queue(redis_prefix, "a")
    job_id = await gateway.submit(SolveRequest(problem="1+1?"))
    await worker.claim(1)  # claiming marks the job running

    async def follow() -> list[str]:
        return [event["type"] async for event in gateway.events(job_id)]

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    await worker.publish(job_id, {"type": "stage", "stage": "generate"})
    await worker.complete(job_id, _result(job_id, "2"))
    assert await asyncio.wait_for(follower, 5) == ["status", "stage", "done"]
    for queue in (gateway, worker):
        await queue.close()


async def test_a_reclaimed_job_keeps_its_deadline_and_fails_at_it(redis_prefix: str) -> None:
    """One deadline, fixed at submit: the second worker gets what remains of it, not a
    fresh budget, and the gateway's wait ends at the same instant. `StalledEngine`
    (tests/workers/test_loop.py) is the named double of an engine that never returns."""
    from tests.workers.test_loop import StalledEngine
    from workers.loop import run_worker
    from workers.pipeline import SolvePipeline

    gateway, a, b = (_queue(redis_prefix, name) for name in ("gw", "a", "b"))
    submitted = time.time()
    job_id = await gateway.submit(SolveRequest(problem="slow", timeout_s=2.5))
    first = await a.claim(1)
    assert first is not None and first.deadline == pytest.approx(submitted + 2.5, abs=0.2)
    await _dies(a)
    await asyncio.sleep(0.6)  # past the visibility timeout: b reclaims it
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(b, SolvePipeline(StalledEngine()), concurrency=1, stop=stop)
    )
    status = await gateway.wait(job_id, 10)
    waited = time.time() - submitted
    stop.set()
    await asyncio.wait_for(worker, 10)
    assert status.status == JobState.failed and status.error_code == Outcome.timeout
    assert "deadline of 2.5 s" in (status.error or "")
    assert 2.4 < waited < 3.3, f"failed {waited:.2f} s after submit, not at its 2.5 s deadline"
    assert int(await b.redis.hget(b._job_key(job_id), "attempts")) == 2
    for queue in (gateway, b):
        await queue.close()


async def test_cancel_reaches_the_worker_running_the_job(redis_prefix: str) -> None:
    """`cancel` on the gateway's queue records `cancelled` at once and the worker that
    claimed the job hears of it (pub/sub), so it can stop the job's engine work."""
    gateway, worker = _queue(redis_prefix, "gw"), _queue(redis_prefix, "w")
    queued = await gateway.submit(SolveRequest(problem="never claimed"))
    running = await gateway.submit(SolveRequest(problem="claimed"))
    await gateway.cancel(queued)
    claimed = [await worker.claim(0.5) for _ in range(3)]  # the cancelled entry is skipped
    assert [job.id for job in claimed if job is not None] == [running]
    heard = worker.cancellations()
    listening = asyncio.ensure_future(heard.__anext__())
    await asyncio.sleep(0.3)  # the worker's subscription is up
    status = await gateway.cancel(running)
    assert status.status == JobState.failed and status.error_code == Outcome.cancelled
    assert await asyncio.wait_for(listening, 5) == running
    await worker.complete(running, _result(running, "too late"))  # the first outcome stands
    assert (await gateway.status(running)).error_code == Outcome.cancelled
    for queue in (gateway, worker):
        await queue.close()


async def test_the_trace_context_travels_with_the_job_and_its_reclaim(redis_prefix: str) -> None:
    """The gateway's W3C context reaches the worker inside the job (a pool's gateway and
    worker spans join one trace), also after a reclaim; a job queued without one has none."""
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    gateway, a, b = (_queue(redis_prefix, name) for name in ("gw", "a", "b"))
    job_id = await gateway.submit(
        SolveRequest(problem="1+1?"), trace_context={"traceparent": traceparent}
    )
    plain_id = await gateway.submit(SolveRequest(problem="2+2?"))
    job = await a.claim(1)
    assert job is not None and job.id == job_id
    assert job.trace_context == {"traceparent": traceparent}
    plain = await a.claim(1)
    assert plain is not None and plain.id == plain_id and plain.trace_context is None
    await a.complete(plain_id, _result(plain_id, "4"))
    await _dies(a)
    await asyncio.sleep(0.6)
    again = await b.claim(1)
    assert again is not None and again.id == job_id and again.attempt == 2
    assert again.trace_context == {"traceparent": traceparent}
    await b.complete(job_id, _result(job_id, "2"))
    for queue in (gateway, b):
        await queue.close()
