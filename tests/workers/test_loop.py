"""The worker loop records exactly one outcome per job: crashes and timeouts become
failed jobs with a reason, never lost ones. A full queue refuses with 503.

Test doubles (named, because a real engine cannot be made to crash or hang on cue):
`CrashingEngine` raises inside generate; `StalledEngine` never returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.registry import AdapterSpec
from contract.schemas import JobState, SolveRequest
from contract.settings import Settings
from entrypoints.embedded import create_embedded_app
from jobqueue.memory import InProcessQueue
from workers.engines.base import Completion, GenerationRequest
from workers.loop import run_worker
from workers.pipeline import SolvePipeline


class _DoubleEngine:
    """Shared no-op parts of the test doubles."""

    model_name = "test-double"

    async def start(self) -> None: ...

    async def load_adapter(self, spec: AdapterSpec) -> None: ...

    async def unload_adapter(self, role: str) -> None: ...

    def adapters(self) -> dict[str, AdapterSpec]:
        return {}

    async def health(self) -> bool:
        return True

    def tokenizer(self) -> Any:
        return None

    async def close(self) -> None: ...


class CrashingEngine(_DoubleEngine):
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        raise RuntimeError("simulated engine crash")


class StalledEngine(_DoubleEngine):
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def _run_jobs(engine: Any, requests: list[SolveRequest]) -> list[Any]:
    queue = InProcessQueue()
    worker = asyncio.create_task(run_worker(queue, SolvePipeline(engine), concurrency=4))
    ids = [await queue.submit(r) for r in requests]
    statuses = [await queue.wait(job_id, timeout=10) for job_id in ids]
    worker.cancel()
    return statuses


async def test_engine_crash_fails_the_job_with_its_reason_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The job's error is a sentence naming the job; the exception goes to the log."""
    with caplog.at_level(logging.ERROR, logger="workers.loop"):
        statuses = await _run_jobs(CrashingEngine(), [SolveRequest(problem="1+1?")] * 3)
    for status in statuses:
        assert status.status == JobState.failed
        assert status.error_code == "internal"
        assert "simulated engine crash" not in (status.error or "")
        assert status.id in (status.error or "")
    assert "simulated engine crash" in caplog.text


async def test_job_timeout_fails_the_job_and_frees_the_slot() -> None:
    started = time.monotonic()
    statuses = await _run_jobs(
        StalledEngine(), [SolveRequest(problem="1+1?", timeout_s=1) for _ in range(8)]
    )
    assert all(s.status == JobState.failed and s.error_code == "timeout" for s in statuses)
    # 8 jobs through 4 slots, each with its deadline 1 s after submit: the slots are
    # released at the deadline, and the jobs that waited, past theirs, fail at once.
    assert time.monotonic() - started < 3


async def test_results_are_recorded_once() -> None:
    queue = InProcessQueue()
    job_id = await queue.submit(SolveRequest(problem="1+1?"))
    await queue.fail(job_id, "first outcome")
    await queue.fail(job_id, "second outcome")
    assert (await queue.status(job_id)).error == "first outcome"


async def test_finished_results_expire_after_their_ttl() -> None:
    queue = InProcessQueue(result_ttl_s=0.05)
    old = await queue.submit(SolveRequest(problem="1+1?"))
    await queue.fail(old, "done")
    await asyncio.sleep(0.1)
    new = await queue.submit(SolveRequest(problem="2+2?"))
    await queue.fail(new, "done")
    assert (await queue.status(new)).status == JobState.failed
    with pytest.raises(Exception, match="unknown, or its result expired"):
        await queue.status(old)


def test_full_queue_answers_503_with_retry_after() -> None:
    settings = Settings(
        model="test-double", queue_max_depth=1, worker_concurrency=1, drain_timeout_s=0
    )
    with TestClient(create_embedded_app(settings, engine=StalledEngine())) as client:
        first = client.post("/jobs", json={"problem": "a"})  # claimed by the worker, stalls
        assert first.status_code == 202
        deadline = time.monotonic() + 5
        while client.get(f"/jobs/{first.json()['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.post("/jobs", json={"problem": "b"}).status_code == 202  # queued
        refused = client.post("/jobs", json={"problem": "c"})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        assert "limit" in refused.json()["detail"]
        assert 'sciserve_requests_total{outcome="rejected",strategy="adaptive"}' in (
            client.get("/metrics").text
        )


def test_solve_timeout_is_504_with_the_reason() -> None:
    settings = Settings(model="test-double", drain_timeout_s=0)
    with TestClient(create_embedded_app(settings, engine=StalledEngine())) as client:
        response = client.post("/solve", json={"problem": "a", "timeout_s": 1})
        assert response.status_code == 504
        assert "timeout" in response.json()["detail"]


class BrokenEngine(_DoubleEngine):
    """Test double: an engine whose start-up fails (a bad model folder, say)."""

    async def start(self) -> None:
        raise RuntimeError("simulated load failure")

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        raise AssertionError("never started")


def test_engine_start_failure_is_reported_and_jobs_fail_fast() -> None:
    with TestClient(
        create_embedded_app(Settings(model="test-double"), engine=BrokenEngine())
    ) as client:
        deadline = time.monotonic() + 5
        while "simulated load failure" not in client.get("/readyz").text:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.get("/readyz").status_code == 503
        started = time.monotonic()
        response = client.post("/solve", json={"problem": "a"})
        assert response.status_code == 500
        assert "simulated load failure" in response.json()["detail"]
        assert time.monotonic() - started < 5


async def test_stop_drains_then_hands_unfinished_jobs_back() -> None:
    queue = InProcessQueue()
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(queue, SolvePipeline(StalledEngine()), concurrency=1,
                   stop=stop, drain_timeout_s=0.1)
    )  # fmt: skip
    running = await queue.submit(SolveRequest(problem="a"))
    waiting = await queue.submit(SolveRequest(problem="b"))
    while (await queue.status(running)).status != JobState.running:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(worker, 5)  # all slots busy, yet the stop is noticed
    for job_id in (running, waiting):
        assert (await queue.status(job_id)).status == JobState.queued
    assert (await queue.stats()).depth == 2


class CountingEngine(_DoubleEngine):
    """Test double: answers every prompt with a fixed solution and counts the calls."""

    calls = 0

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        self.calls += 1
        return [Completion(["The answer is \\boxed{4}."], [[1, 2, 3]], 5, ["stop"])
                for _ in requests]  # fmt: skip


@pytest.mark.parametrize("cache", [True, False])
def test_result_cache_answers_identical_requests_once(cache: bool) -> None:
    engine = CountingEngine()
    settings = Settings(model="test-double", result_cache=cache)
    with TestClient(create_embedded_app(settings, engine=engine)) as client:
        first = client.post("/solve", json={"problem": "2 + 2?"}).json()
        second = client.post("/solve", json={"problem": "2 + 2?"}).json()
        other = client.post("/solve", json={"problem": "2 + 3?"}).json()
    assert first["answer"] == second["answer"] == "4"
    assert (first["id"] == second["id"]) is cache
    assert other["id"] != first["id"]
    assert engine.calls == (2 if cache else 3)
