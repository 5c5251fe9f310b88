"""`stats().depth` means the same on both queues: jobs queued or running, not yet
finished (the gauge `sciserve_queue_depth` and the autoscaler read it). The in-process
queue used to count only the queued ones."""

from __future__ import annotations

import pytest

from contract.schemas import SolveRequest, SolveResult
from jobqueue.memory import InProcessQueue
from jobqueue.protocol import JobQueue
from jobqueue.redis_streams import RedisQueue, connect
from tests.conftest import REDIS_URL


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_depth_counts_queued_and_running_jobs(kind: str, redis_prefix: str) -> None:
    queue: JobQueue = (
        InProcessQueue()
        if kind == "memory"
        else RedisQueue(connect(REDIS_URL), prefix=redis_prefix, consumer="a")
    )
    try:
        ids = [await queue.submit(SolveRequest(problem=f"{i} + 1?")) for i in range(3)]
        assert (await queue.stats()).depth == 3
        running = await queue.claim(1)
        assert running is not None and running.id == ids[0]
        assert (await queue.stats()).depth == 3  # two queued, one running
        await queue.complete(running.id, SolveResult(id=running.id, answer="1", answer_text="1"))
        stats = await queue.stats()
        assert stats.depth == 2 and stats.expected_sequences == 2
    finally:
        await queue.close()
