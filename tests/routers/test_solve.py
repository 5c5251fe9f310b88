"""`/solve`, `/jobs`, `/healthz`, `/readyz`, `/metrics` and `/docs` end to end on the
real vLLM engine with the tiny (random-weight) model: the answers are gibberish, so
these tests check the contract and the accounting, not the maths."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Service
from workers.engines.base import GenerationRequest, Sampling
from workers.prompts import direct_user_prompt


def test_solve_returns_the_contract_and_matches_the_engine(service: Service) -> None:
    problem = "What is 6 * 7?"
    body = {
        "problem": problem,
        "reference": "42",
        "return_trace": True,
        "max_tokens": 16,
        "strategy": {"tools": "never"},
    }
    with service.client() as client:
        response = client.post("/solve", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) >= {
        "id",
        "answer",
        "answer_text",
        "correct",
        "used_tools",
        "usage",
        "timings",
        "trace",
    }
    # The same prompt straight to the engine gives the same greedy text and counts.
    [raw] = service.call(
        service.engine.generate(
            [
                GenerationRequest(
                    messages=[{"role": "user", "content": direct_user_prompt(problem, None)}],
                    role="policy",
                    sampling=Sampling(max_tokens=16),
                )
            ]
        )
    )
    assert result["answer_text"] == raw.texts[0]
    assert result["usage"]["prompt_tokens"] == raw.prompt_tokens
    assert result["usage"]["completion_tokens"] == raw.completion_tokens
    assert result["usage"]["engine_calls"] == 1
    assert result["correct"] is (result["answer"] == "42")
    [event] = result["trace"]
    assert event["stage"] == "generate" and event["role"] == "policy"
    assert result["timings"]["total_s"] >= result["timings"]["run_s"] > 0


def test_trace_is_omitted_unless_asked(service: Service) -> None:
    with service.client() as client:
        result = client.post("/solve", json={"problem": "2+2?", "max_tokens": 4}).json()
    assert result["trace"] is None


# One end-to-end run per strategy on the real vLLM engine: the stages that ran, engine
# calls (K samples: one request each, all K with stop none), and that the trace accounts
# for all of usage.
STRATEGY_RUNS = [
    ({"tools": "never"}, ["generate"], 1),
    ({"tools": "auto"}, ["generate"], None),  # the tiny model may emit anything
    ({"tools": "never", "think": True}, ["generate"], None),  # 2 if a format break resamples
    ({"tools": "never", "attempts": 3}, ["generate", "selfcorrect", "selfcorrect"], 3),
    ({"tools": "never", "samples": 4, "stop": "none"}, ["generate", "select"], 4),
    (
        {"tools": "never", "samples": 2, "attempts": 2, "stop": "none"},
        ["generate", "selfcorrect", "select"],
        4,
    ),
    ({"tools": "never", "art": True}, ["generate", "art_ask"], None),  # refine if asked
    ({"tools": "never", "few_shot": 1}, ["few_shot", "generate"], 1),
]


@pytest.mark.parametrize(("strategy", "first_stages", "engine_calls"), STRATEGY_RUNS)
def test_each_strategy_end_to_end(
    service: Service, strategy: dict[str, Any], first_stages: list[str], engine_calls: int | None
) -> None:
    body = {"problem": "What is 6 * 7?", "max_tokens": 8, "strategy": strategy}
    with service.client() as client:
        response = client.post("/solve", json={**body, "return_trace": True, "reference": "42"})
    assert response.status_code == 200, response.text
    result = response.json()
    stages = [event["stage"] for event in result["trace"]]
    assert stages[: len(first_stages)] == first_stages
    usage = result["usage"]
    for field in (
        "prompt_tokens",
        "completion_tokens",
        "thought_tokens",
        "tool_tokens",
        "engine_calls",
    ):
        assert usage[field] == sum(event[field] for event in result["trace"]), field
    if engine_calls is not None:
        assert usage["engine_calls"] == engine_calls
    if strategy.get("samples", 1) > 1:
        assert (
            sum(v for v in result["trace"][-1]["detail"]["votes"].values()) <= strategy["samples"]
        )
    if strategy.get("tools") == "auto":
        assert result["trace"][0]["detail"]["mode"] == "adaptive"
        assert result["trace"][0]["detail"]["tools_shown"], "the tool prompt showed no tools"
    assert result["thoughts"] is None
    generate = next(event for event in result["trace"] if event["stage"] == "generate")
    assert generate["role"] == "policy"  # the policy adapter serves generation unchanged


def test_stage_metrics_are_exported(service: Service) -> None:
    body = {"problem": "2+2?", "max_tokens": 4, "strategy": {"tools": "never", "attempts": 2}}
    with service.client() as client:
        assert client.post("/solve", json=body).status_code == 200
        metrics = client.get("/metrics").text
    for name in (
        'sciserve_stage_duration_seconds_count{stage="generate"}',
        'sciserve_stage_duration_seconds_count{stage="selfcorrect"}',
        'sciserve_solve_tokens_total{kind="visible"}',
        'sciserve_solve_tokens_total{kind="thought"}',
        'sciserve_requests_total{outcome="ok",strategy="selfcorrect"}',
    ):
        assert name in metrics, name


def test_jobs_are_accepted_then_pollable(service: Service) -> None:
    with service.client() as client:
        accepted = client.post("/jobs", json={"problem": "2+2?", "max_tokens": 4})
        assert accepted.status_code == 202
        job_id = accepted.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = client.get(f"/jobs/{job_id}").json()
            if status["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
    assert status["status"] == "succeeded"
    assert status["result"]["id"] == job_id


def test_ops_endpoints(service: Service) -> None:
    with service.client() as client:
        client.post("/solve", json={"problem": "2+2?", "max_tokens": 4})
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        assert client.get("/docs").status_code == 200
        assert "/solve" in client.get("/openapi.json").json()["paths"]
        metrics = client.get("/metrics").text
    for name in (
        'sciserve_requests_total{outcome="ok",strategy="direct"}',
        "sciserve_request_duration_seconds_bucket",
        'sciserve_engine_tokens_total{kind="prompt"}',
        'sciserve_engine_tokens_total{kind="completion"}',
        "sciserve_engine_calls_total",
        'sciserve_adapter_loaded{role="policy"} 1.0',
    ):
        assert name in metrics, name


def test_job_events_stream_as_sse(service: Service) -> None:
    with service.client() as client:
        job_id = client.post("/jobs", json={"problem": "2+2?", "max_tokens": 4}).json()["id"]
        with client.stream("GET", f"/jobs/{job_id}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
        assert client.get("/jobs/nope/events").status_code == 404
        metrics = client.get("/metrics").text
    assert names == ["status", "stage", "done"]
    for name in (
        "sciserve_queue_depth",
        "sciserve_queue_oldest_age_seconds",
        'sciserve_jobs_total{outcome="succeeded"}',
        "sciserve_worker_busy_slots",
    ):
        assert name in metrics, name
