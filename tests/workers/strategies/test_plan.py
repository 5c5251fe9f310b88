# mypy: disable-error-code="index, union-attr, misc, arg-type"
"""PEARL's plan strategy, driven by fixed outputs from the `ScriptedEngine` test double
(tests/doubles.py); COMPUTE code runs on a real python tool-server process."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from contract.schemas import Strategy
from tests.workers.strategies.conftest import Solve
from workers.prompts import BOXED_FORMAT
from workers.strategies.plan import parse_plan

PLAN = "Make a plan"
ANSWER = "Use the results to answer"
NEVER_PLAN = {"tools": "never", "plan": True}
THREE_STEPS = "1. FIND: the two numbers\n2. COMPUTE: their sum\n3. ANSWER: the sum"


def steps_count(action: str) -> float:
    return REGISTRY.get_sample_value("sciserve_plan_steps_total", {"action": action}) or 0.0


def test_plan_then_each_step_with_results_fed_forward_then_the_answer(solve: Solve) -> None:
    before = steps_count("compute")
    rules = [
        (PLAN, THREE_STEPS),
        ("Carry out only step 1", "The numbers are 2 and 2."),
        ("Carry out only step 2", "2 + 2 = 4."),
        (ANSWER, "The sum is \\boxed{4}"),
    ]
    result, engine, _ = solve(rules, strategy=NEVER_PLAN, reference="4")
    assert [e.stage for e in result.trace] == ["plan", "plan_step", "plan_step", "plan_answer"]
    prompts = [call.messages[-1]["content"] for call in engine.calls]
    assert "FIND" in prompts[0] and "COMPARE" in prompts[0] and "What is 2 + 2?" in prompts[0]
    assert "Results so far:\n1. The numbers are 2 and 2." in prompts[2]
    assert "Carry out only step 2. COMPUTE: their sum" in prompts[2]
    assert "python code block" not in prompts[2]  # tools: never
    assert "2. 2 + 2 = 4." in prompts[3] and prompts[3].endswith(BOXED_FORMAT)
    assert result.answer == "4" and result.correct is True
    assert result.trace[0].detail["plans"] == [["FIND: the two numbers", "COMPUTE: their sum"]]
    assert result.trace[2].detail["actions"] == ["COMPUTE"]
    assert result.trace[2].detail["results"] == ["2 + 2 = 4."]
    assert steps_count("compute") == before + 1
    assert result.usage.engine_calls == 4


def test_a_compute_step_runs_its_code(solve: Solve, tool_servers: dict[str, str]) -> None:
    rules = [
        (PLAN, "1. COMPUTE: the product\n2. ANSWER: it"),
        ("Carry out only step 1", "```python\nprint(1234 * 5678)\n```"),
        (ANSWER, "\\boxed{7006652}"),
    ]
    result, engine, _ = solve(
        rules,
        problem="What is 1234 * 5678?",
        strategy={"plan": True},
        tool_urls=tool_servers,
    )
    assert "python code block" in engine.calls[1].messages[-1]["content"]
    assert "1. 7006652" in engine.calls[2].messages[-1]["content"]
    [call] = result.trace[1].detail["tool_calls"]
    assert call["tool"] == "write_and_run_code" and call["status_code"] == 200
    assert result.used_tools == ["write_and_run_code"] and result.answer == "7006652"


def test_an_unreadable_plan_answers_directly(solve: Solve) -> None:
    rules = [(PLAN, "I would just add them."), (ANSWER, "\\boxed{4}")]
    result, engine, _ = solve(rules, strategy=NEVER_PLAN)
    assert [e.stage for e in result.trace] == ["plan", "plan_answer"]
    assert result.trace[0].detail["readable"] == [False] and result.answer == "4"
    assert len(engine.calls) == 2


def test_plan_with_samples_votes(solve: Solve) -> None:
    rules = [
        (PLAN, ["1. COMPUTE: the sum", "1. DERIVE: the sum", "no plan"]),
        ("Carry out only step 1", "4"),
        (ANSWER, ["\\boxed{4}", "\\boxed{4}", "\\boxed{5}"]),
    ]
    result, _, _ = solve(rules, strategy={**NEVER_PLAN, "samples": 3})
    assert [e.stage for e in result.trace] == ["plan", "plan_step", "plan_answer", "select"]
    assert result.trace[1].detail["actions"] == ["COMPUTE", "DERIVE"]
    assert result.answer == "4" and result.trace[-1].detail["method"] == "vote"


def test_plan_parsing_and_the_contract() -> None:
    text = "Plan:\n1. FIND: a\n2) **Compute**: b\nStep 3: derive - c\n4. ANSWER: d\n5. FIND: e"
    assert parse_plan(text) == [("FIND", "a"), ("COMPUTE", "b"), ("DERIVE", "c")]
    assert parse_plan("1. GUESS: x") == []
    # the demo model's plan: the prompt shows 'N. ACTION: …', and the model keeps the N
    copied = (
        "N. FIND: Olivia hid 7 dozen eggs in the yard for the Easter egg hunt.\n"
        "N. COMPUTE: 7 dozen eggs = 7 * 12 = 84 eggs.\n"
        "N. DERIVE: Noah finds 4 less than Ava, so Noah finds 84 - 4 = 80 eggs.\n"
        "N. ANSWER: 40 eggs are still hidden in the yard."
    )
    assert [action for action, _ in parse_plan(copied)] == ["FIND", "COMPUTE", "DERIVE"]
    assert parse_plan("- FIND: a\n* COMPUTE: b\nDERIVE: c") == [
        ("FIND", "a"),
        ("COMPUTE", "b"),
        ("DERIVE", "c"),
    ]
    assert Strategy(plan=True).name == "plan"
    with pytest.raises(ValidationError, match="plan"):
        Strategy(plan=True, think=True)
