"""Every outcome code of a failed job, driven through a real job (gateway → queue →
worker → pipeline) to its HTTP status and message, on `/solve` and `GET /jobs/{id}`.

Test doubles, named because a real engine cannot be made to fail on cue:
- `ScriptedEngine` (tests/doubles.py) with the tiny model's real tokenizer, where the
  model's words decide nothing but the prompt's length and the roles matter;
- `StalledEngine` (tests/workers/test_loop.py), an engine that never returns, for the
  deadline and cancellation;
- `CrashingEngine` (same file), which raises inside generate, for `internal`;
- `UnreachableRemoteEngine`: the real remote OpenAI engine whose server went away
  after start-up (its start only loads the tokenizer).
The tool servers of `tool_unavailable` are real URLs with nothing listening.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from contract.errors import Outcome
from contract.settings import Settings
from entrypoints.embedded import create_embedded_app, free_port
from tests.doubles import ScriptedEngine
from tests.workers.test_loop import CrashingEngine, StalledEngine
from workers.engines.openai_engine import OpenAIEngine
from workers.models.tiny import TinyModel


class UnreachableRemoteEngine(OpenAIEngine):
    """Test double: the remote engine, started against a server that has since gone."""

    def __init__(self, tokenizer: Any):
        super().__init__(f"http://127.0.0.1:{free_port()}", "tiny")
        self._tokenizer = tokenizer
        self._served_name = "tiny"

    async def start(self) -> None: ...


@pytest.fixture(scope="module")
def tokenizer(tiny_model: TinyModel) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


@contextlib.contextmanager
def _client(double: Any, **settings: Any) -> Iterator[TestClient]:
    values: dict[str, Any] = {"model": "test-double", "drain_timeout_s": 0, "mount_tools": False}
    values.update(settings)
    with TestClient(create_embedded_app(Settings(**values), engine=double)) as client:
        yield client


def _solve_and_job(client: TestClient, body: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """`/solve`'s response, and the same request's job as `GET /jobs/{id}` reports it."""
    solved = client.post("/solve", json=body)
    job_id = client.post("/jobs", json=body).json()["id"]
    deadline = time.monotonic() + 30
    while (job := client.get(f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    return solved, job


def _assert_outcome(
    solved: Any, job: dict[str, Any], outcome: Outcome, status: int, words: str
) -> None:
    assert solved.status_code == status, solved.text
    assert words in solved.json()["detail"], solved.json()
    assert job["status"] == "failed"
    assert job["error_code"] == outcome.value
    assert words in job["error"]


def test_invalid_request_is_422(tokenizer: Any) -> None:
    engine = ScriptedEngine(tokenizer, [], roles=("policy",))
    with _client(engine, role_fallback=False) as client:
        body = {"problem": "2 + 2?", "strategy": {"art": True, "tools": "never"}}
        solved, job = _solve_and_job(client, body)
    _assert_outcome(solved, job, Outcome.invalid_request, 422, "asker and truster")


def test_prompt_too_long_is_422(tokenizer: Any) -> None:
    engine = ScriptedEngine(tokenizer, [])
    with _client(engine, max_model_len=256) as client:
        body = {"problem": "seven " * 600, "strategy": {"tools": "never"}}
        solved, job = _solve_and_job(client, body)
    _assert_outcome(solved, job, Outcome.prompt_too_long, 422, "the model's context is 256")


def test_tool_unavailable_is_503_with_retry_after(tokenizer: Any) -> None:
    engine = ScriptedEngine(tokenizer, [])
    dead = {"python": f"http://127.0.0.1:{free_port()}"}
    with _client(engine, tool_urls=dead, tool_timeout_s=2) as client:
        body = {"problem": "2 + 2?", "strategy": {"tools": "always"}, "tools": ["python"]}
        solved, job = _solve_and_job(client, body)
    _assert_outcome(solved, job, Outcome.tool_unavailable, 503, "unreachable")
    assert solved.headers["Retry-After"]


def test_engine_unavailable_is_503_with_retry_after(tokenizer: Any) -> None:
    with _client(UnreachableRemoteEngine(tokenizer), engine="openai") as client:
        solved, job = _solve_and_job(client, {"problem": "2 + 2?", "strategy": {"tools": "never"}})
    _assert_outcome(solved, job, Outcome.engine_unavailable, 503, "unreachable")
    assert solved.headers["Retry-After"]


def test_timeout_is_504_at_the_deadline() -> None:
    with _client(StalledEngine()) as client:
        started = time.monotonic()
        solved, job = _solve_and_job(client, {"problem": "a", "timeout_s": 1})
        elapsed = time.monotonic() - started
    _assert_outcome(solved, job, Outcome.timeout, 504, "deadline of 1 s")
    assert elapsed < 5, "the client's wait ends with the job's deadline (+ a small grace)"


def cancelled_total() -> float:
    return REGISTRY.get_sample_value("sciserve_jobs_cancelled_total") or 0.0


def test_cancelled_is_409_for_a_waiting_client_and_in_the_job() -> None:
    before = cancelled_total()
    key = {"Idempotency-Key": "cancel-me"}  # names the /solve's job for the DELETE
    with _client(StalledEngine()) as client, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.post, "/solve", json={"problem": "a"}, headers=key)
        job_id = client.post("/jobs", json={"problem": "a"}, headers=key).json()["id"]
        deadline = time.monotonic() + 5
        while client.get(f"/jobs/{job_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        cancelled = client.delete(f"/jobs/{job_id}")
        solved = waiting.result(10)
        again = client.delete(f"/jobs/{job_id}")
        job = client.get(f"/jobs/{job_id}").json()
        assert client.delete("/jobs/nope").status_code == 404
        # The worker stopped the job's task: it counts the cancellation.
        while cancelled_total() < before + 1:
            assert time.monotonic() < deadline + 5
            time.sleep(0.02)
    assert cancelled.status_code == 200 and cancelled.json()["error_code"] == "cancelled"
    _assert_outcome(solved, job, Outcome.cancelled, 409, "cancelled")
    assert again.status_code == 409 and "already finished" in again.json()["detail"]


def test_internal_is_500_with_the_cause_in_the_log_not_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client gets the outcome and a sentence naming the job; the exception (its
    text can carry paths and internal URLs) goes to the worker's log."""
    with caplog.at_level(logging.ERROR, logger="workers.loop"), _client(CrashingEngine()) as client:
        solved, job = _solve_and_job(client, {"problem": "a", "strategy": {"tools": "never"}})
    _assert_outcome(solved, job, Outcome.internal, 500, "internal error")
    assert "simulated engine crash" not in solved.text and "RuntimeError" not in solved.text
    assert job["id"] in job["error"]
    assert "simulated engine crash" in caplog.text


def test_every_outcome_has_a_test() -> None:
    """A new outcome code needs its own test above."""
    tested = {
        name.removeprefix("test_").split("_is_")[0]
        for name in globals()
        if name.startswith("test_") and "_is_" in name
    }
    assert {o.value for o in Outcome} == tested
