# mypy: disable-error-code="index, union-attr, misc, arg-type, operator"
"""`budget_tokens` on the real vLLM engine (tiny model, which always generates its full
`max_tokens`, so every figure below is exact): the job never generates more than its
budget, the call that meets the end of it is cut to what remains, stages that no longer
fit are skipped, and the gateway refuses a budget that cannot fit one answer."""

from __future__ import annotations

from typing import Any

import pytest

from contract.schemas import SolveRequest, SolveResult
from tests.conftest import Service
from workers.pipeline import SolvePipeline

MAX_TOKENS = 24


def solve(service: Service, budget: int, **strategy: Any) -> SolveResult:
    request = SolveRequest(
        problem="What is 2 + 2?",
        strategy={"tools": "never", **strategy},  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
        budget_tokens=budget,
        seed=3,
        return_trace=True,
    )
    return service.call(SolvePipeline(service.engine).solve(f"budget-{budget}", request))


def generated(result: SolveResult) -> int:
    return result.usage.completion_tokens + result.usage.thought_tokens


def test_the_call_at_the_end_of_the_budget_is_cut_and_later_stages_skipped(
    service: Service,
) -> None:
    result = solve(service, 40, attempts=3)  # 3 x 24 planned; 40 allowed
    assert generated(result) == 40  # 24, then the correction cut to 16, then nothing
    assert [event.stage for event in result.trace] == ["generate", "selfcorrect", "selfcorrect"]
    last = result.trace[-1]  # the round that found nothing left: recorded, empty
    assert last.detail == {"budget_spent": True} and last.completion_tokens == 0
    assert result.usage.engine_calls == 2 and result.answer_text  # round 1's answer stands


@pytest.mark.parametrize(
    ("budget", "strategy"),
    [
        (60, {"samples": 4}),
        (100, {"samples": 4, "attempts": 2}),
        (50, {"samples": 3, "stop": "none", "think": True}),
        (70, {"attempts": 2, "art": True}),
    ],
)
def test_no_strategy_generates_past_its_budget(
    service: Service, budget: int, strategy: dict[str, Any]
) -> None:
    result = solve(service, budget, **strategy)
    assert 0 < generated(result) <= budget
    assert sum(e.completion_tokens + e.thought_tokens for e in result.trace) == generated(result)


def test_the_gateway_refuses_a_budget_that_cannot_fit_one_answer(service: Service) -> None:
    with service.client() as client:
        body = {"problem": "What is 2 + 2?", "max_tokens": 64, "budget_tokens": 10}
        response = client.post("/solve", json=body)
        assert response.status_code == 422
        assert "budget_tokens=10 cannot fit one answer of max_tokens=64" in response.text
        # No max_tokens: the server's default must fit too.
        response = client.post("/solve", json={"problem": "What is 2 + 2?", "budget_tokens": 5})
        assert response.status_code == 422 and "budget_tokens=5" in response.text
        ok = client.post(
            "/solve",
            json={
                "problem": "What is 2 + 2?",
                "max_tokens": 16,
                "budget_tokens": 40,
                "strategy": {"tools": "never", "samples": 8},
            },
        )
        assert ok.status_code == 200, ok.text
        usage = ok.json()["usage"]
        assert usage["completion_tokens"] + usage["thought_tokens"] <= 40
