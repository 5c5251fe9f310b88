"""The strategy-weighted backlog the worker autoscaler scales on
(`sciserve_queue_expected_engine_sequences`): both queues sum the expected engine
sequences of their unfinished jobs, and a finished job stops counting.

Real Redis (test database 9) and the real in-process queue; nothing is mocked.
"""

from __future__ import annotations

import pytest

from contract.schemas import SolveRequest, SolveResult, Strategy
from jobqueue.memory import InProcessQueue
from jobqueue.protocol import JobQueue
from jobqueue.redis_streams import RedisQueue, connect
from tests.conftest import REDIS_URL


@pytest.mark.parametrize(
    ("strategy", "sequences"),
    [
        ({"tools": "never"}, 1),
        ({}, 1),
        ({"samples": 8}, 8),
        ({"attempts": 3}, 3),
        ({"samples": 4, "attempts": 2}, 8),
        ({"art": True}, 4),
        ({"tools": "always"}, 2),
        ({"think": True, "samples": 2}, 2),
        ({"plan": True, "samples": 3}, 6),
    ],
)
def test_expected_engine_sequences(strategy: dict[str, object], sequences: int) -> None:
    assert Strategy.model_validate(strategy).expected_engine_sequences() == sequences


async def _fill_and_finish(queue: JobQueue) -> list[int]:
    seen = [(await queue.stats()).expected_sequences]
    for strategy in ({"tools": "never"}, {"samples": 8}, {"attempts": 2, "art": True}):
        await queue.submit(SolveRequest(problem="1+1?", strategy=Strategy.model_validate(strategy)))
    seen.append((await queue.stats()).expected_sequences)
    job = await queue.claim(timeout=5)
    assert job is not None
    seen.append((await queue.stats()).expected_sequences)  # running still counts
    await queue.complete(job.id, SolveResult(id=job.id, answer="2", answer_text="2"))
    seen.append((await queue.stats()).expected_sequences)
    return seen


async def test_in_process_queue_backlog() -> None:
    assert await _fill_and_finish(InProcessQueue()) == [0, 1 + 8 + 5, 14, 13]


async def test_redis_queue_backlog(redis_prefix: str) -> None:
    gateway = RedisQueue(connect(REDIS_URL), prefix=redis_prefix, consumer="g")
    try:
        assert await _fill_and_finish(gateway) == [0, 14, 14, 13]
        # A second gateway (no cache yet) reads the same backlog from Redis.
        other = RedisQueue(connect(REDIS_URL), prefix=redis_prefix, consumer="g2")
        try:
            assert (await other.stats()).expected_sequences == 13
        finally:
            await other.close()
    finally:
        await gateway.close()
