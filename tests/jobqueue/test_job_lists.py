"""What the trace pages read from the queue, on both queues (in-process and a real
Redis): each job's request, submit time and key name (`summary`), an owner's newest jobs
and nobody else's (`recent`), and a job's events so far without waiting (`history`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from contract.errors import UnknownJobError
from contract.schemas import JobState, SolveRequest, SolveResult
from jobqueue.memory import InProcessQueue
from jobqueue.protocol import JobQueue
from jobqueue.redis_streams import RedisQueue, connect
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[JobQueue]:
    if request.param == "memory":
        yield InProcessQueue()
        return
    prefix = request.getfixturevalue("redis_prefix")
    redis_queue = RedisQueue(connect(REDIS_URL), prefix=prefix, result_ttl_s=60)
    try:
        yield redis_queue
    finally:
        await redis_queue.close()


def _request(problem: str) -> SolveRequest:
    return SolveRequest(problem=problem)


async def test_jobs_keep_their_key_name_and_list_per_owner(queue: JobQueue) -> None:
    first = await queue.submit(_request("first"), None, "hash-a", owner_name="alice")
    await asyncio.sleep(0.01)  # distinct submit times: the list is newest first
    second = await queue.submit(_request("second"), None, "hash-a", owner_name="alice")
    other = await queue.submit(_request("other"), None, "hash-b", owner_name="bob")
    anonymous = await queue.submit(_request("keys off"))

    summary = await queue.summary(first)
    assert (summary.id, summary.owner_name, summary.request.problem) == (first, "alice", "first")
    assert summary.status.status == JobState.queued and summary.submitted_at > 0

    assert [s.id for s in await queue.recent("hash-a", 10)] == [second, first]
    assert [s.id for s in await queue.recent("hash-a", 1)] == [second]
    assert [s.id for s in await queue.recent("hash-b", 10)] == [other]
    assert [s.id for s in await queue.recent(None, 10)] == [anonymous]
    assert (await queue.summary(anonymous)).owner_name is None
    assert await queue.recent("hash-nobody", 10) == []
    with pytest.raises(UnknownJobError):
        await queue.summary("no-such-job")


async def test_history_is_the_events_so_far_and_summary_follows_the_outcome(
    queue: JobQueue,
) -> None:
    job_id = await queue.submit(_request("2 + 2?"), None, "hash-a", owner_name="alice")
    assert await queue.history(job_id) == []
    job = await queue.claim(5)
    assert job is not None and job.id == job_id
    await queue.publish(job_id, {"type": "stage", "index": 0, "stage": "generate"})
    seen = [e["type"] for e in await queue.history(job_id)]
    assert seen == ["status", "stage"]  # no wait: the job is still running
    await queue.complete(job_id, SolveResult(id=job_id, answer="4", answer_text="4"))
    assert [e["type"] for e in await queue.history(job_id)] == ["status", "stage", "done"]
    [listed] = await queue.recent("hash-a", 10)
    assert listed.status.status == JobState.succeeded and listed.status.result is not None
    assert listed.status.result.answer == "4"
