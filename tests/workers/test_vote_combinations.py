# mypy: disable-error-code="index, union-attr, misc, arg-type, operator"
"""Early-stopped votes and `auto` on every strategy combination that has samples, on the
real vLLM engine (tiny model) with the real tool servers over HTTP: pairs of attempts,
art, think and tools. Per combination, same seed: a settled vote answers as the full
vote, usage is what the engine generated, `budget_tokens` holds, and auto runs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from prometheus_client import REGISTRY

from contract.schemas import SolveRequest, SolveResult
from tests.conftest import Service
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.tools.client import ToolClient

FEATURES: dict[str, dict[str, Any]] = {
    "attempts": {"attempts": 2},
    "art": {"art": True},
    "think": {"think": True},
    "tools": {"tools": "auto"},
}
PAIRS = list(itertools.combinations(FEATURES, 2))  # think+tools: TPO around the tool prompt
MAX_TOKENS = 16


def completion_tokens() -> float:
    return REGISTRY.get_sample_value("sciserve_engine_tokens_total", {"kind": "completion"}) or 0.0


def run(
    service: Service, tools: dict[str, str], strategy: dict[str, Any], job: str, **extra: Any
) -> tuple[SolveResult, float]:
    fields = {"tools": "never", **strategy}
    request = SolveRequest(
        problem="What is 2 + 2?",
        answer_type="number",
        strategy=fields,  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
        seed=11,
        return_trace=True,
        **extra,
    )
    client = ToolClient(tools, attempts=1) if fields["tools"] != "never" else None
    options = PipelineOptions(context_tokens=4096, max_tool_calls=1)
    pipeline = SolvePipeline(service.engine, options, client)

    async def go() -> SolveResult:
        try:
            return await pipeline.solve(job, request)
        finally:
            await pipeline.aclose()

    before = completion_tokens()
    result = service.call(go())
    return result, completion_tokens() - before


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=["+".join(p) for p in PAIRS])
def test_settled_and_auto_on_each_pair(
    service: Service, tool_servers: dict[str, str], first: str, second: str
) -> None:
    strategy = {**FEATURES[first], **FEATURES[second], "samples": 3}
    full, full_tokens = run(service, tool_servers, {**strategy, "stop": "none"}, "full")
    settled, settled_tokens = run(service, tool_servers, strategy, "settled")
    assert settled.answer == full.answer
    for result, tokens in ((full, full_tokens), (settled, settled_tokens)):
        generated = result.usage.completion_tokens + result.usage.thought_tokens
        assert generated == tokens  # usage is what the engine generated
    assert settled.trace[-1].detail["stop"]["rule"] == "settled"

    auto, _ = run(service, tool_servers, {**strategy, "auto": True}, "auto")
    assert auto.trace[-1].detail["stop"]["auto"]["escalated"]  # the built-in policy
    budget = 3 * MAX_TOKENS
    capped, _ = run(service, tool_servers, strategy, "capped", budget_tokens=budget)
    assert capped.usage.completion_tokens + capped.usage.thought_tokens <= budget
