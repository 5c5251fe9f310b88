# mypy: disable-error-code="index, union-attr, misc, arg-type"
"""The "awl" prompt style: AWL's own conversation layout, driven by fixed outputs from
the `ScriptedEngine` test double (tests/doubles.py); tool calls go over real HTTP to
real tool-server processes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.workers.strategies.conftest import Solve
from workers.pipeline import PipelineOptions
from workers.prompts import (
    AWL_FUNCTIONS_HEADER,
    AWL_SYSTEM_MECHANICS,
    AWL_SYSTEM_PDE,
    AWL_SYSTEM_REACT,
    AWL_TOOL_DECISION,
    AWL_TOOL_LIMIT_REACHED,
)
from workers.strategies.awl import classify_domain

AWL = {"prompt_style": "awl"}
PDE_QUESTION = (
    "In a 1D heat conduction process with constant initial temperature of 63 °C and Dirichlet "
    "boundary conditions with 67 °C at x=0 and 44 °C at x=L, what is the temperature (°C) at "
    "x=70 cm after 10 seconds? (D=0.81, L=86 cm)"
)
PDE_CALL = json.dumps(
    {
        "name": "setup_and_solve",
        "parameters": {
            "thought": "set it up",
            "dimension": "1D",
            "D": 0.81,
            "T": 10,
            "L": 86,
            "ic_type": "constant",
            "ic_params": {"value": 63},
            "bc_type": "dirichlet",
            "bc_params": {"left_value": 67, "right_value": 44},
            "solution_type": "get_value_at_point",
            "x": 70,
            "solution_x": 70,
        },
    }
)
ANSWER_B = json.dumps(
    {
        "name": "answer_question",
        "parameters": {"thought": "close to B", "sloving_process": "solved", "answer": "B"},
    }
)


def _solve_pde(solve: Solve, tool_servers: dict[str, str], **fields: Any) -> tuple[Any, Any]:
    """The PDE question with its options, scripted to call setup_and_solve, then answer B."""
    rules = [("Feedback from 'setup_and_solve'", ANSWER_B), ("Question:", PDE_CALL)]
    result, engine, _ = solve(
        rules,
        problem=PDE_QUESTION,
        options=["50.0", "63.0", "70.0", "80.0"],
        tool_urls=tool_servers,
        **fields,
    )
    return result, engine


def test_awl_layout_for_a_pde_question(solve: Solve, tool_servers: dict[str, str]) -> None:
    result, engine = _solve_pde(solve, tool_servers, strategy={**AWL, "domain": "pde"})
    first = engine.calls[0].messages
    assert [m["role"] for m in first] == ["system", "user"]
    assert first[0]["content"] == AWL_SYSTEM_PDE
    turn = first[1]["content"]
    assert turn.startswith(AWL_FUNCTIONS_HEADER)
    assert '\n    "type": "function",' in turn  # each schema as indented JSON
    assert f"Question: {PDE_QUESTION}\n\nOptions: A. 50.0\nB. 63.0\nC. 70.0\nD. 80.0" in turn
    assert '"setup_and_solve"' in turn and '"answer_question"' in turn
    assert "write_and_run_code" not in turn and "simulate_epidemic" not in turn
    assert AWL_TOOL_DECISION not in turn  # the sciserve layout's sentence
    feedback = engine.calls[1].messages[-1]
    assert feedback["role"] == "user"
    assert feedback["content"].startswith("Feedback from 'setup_and_solve': ")
    assert result.answer == "B" and result.used_tools == ["setup_and_solve"]
    generate = result.trace[0].detail
    assert (generate["prompt_style"], generate["domain"], generate["domain_from"]) == (
        "awl",
        "pde",
        "request",
    )
    assert generate["tools_shown"] == ["setup_and_solve"]


def test_awl_message_limit_per_domain(solve: Solve, tool_servers: dict[str, str]) -> None:
    """MuJoCo: at most 10 messages, so 4 tool calls, then the model must answer."""
    call = json.dumps({"name": "ball_simulation", "parameters": {"thought": "t"}})
    rules = [(AWL_TOOL_LIMIT_REACHED, ANSWER_B), ("", call)]
    result, engine, _ = solve(
        rules,
        problem="A ball of mass 1 kg falls from 5 m. How fast is it after 1 s?",
        options=["1", "5", "9.8", "20"],
        tool_urls=tool_servers,
        strategy=AWL,
    )
    assert result.trace[0].detail["domain"] == "mechanics"  # classified
    assert engine.calls[0].messages[0]["content"] == AWL_SYSTEM_MECHANICS
    assert len(result.trace[0].detail["tool_calls"][0]) == 4
    assert len(engine.calls) == 6 and len(engine.calls[-2].messages) == 10
    assert result.answer == "B"


def test_the_worker_default_style_and_the_request_override(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    options = PipelineOptions(prompt_style="awl")
    _, engine, _ = solve(
        [("", ANSWER_B)], tool_urls=tool_servers, pipeline_options=options, options=["3", "4"]
    )
    assert engine.calls[0].messages[0]["role"] == "system"
    _, engine, _ = solve(
        [("", ANSWER_B)],
        tool_urls=tool_servers,
        pipeline_options=options,
        options=["3", "4"],
        strategy={"prompt_style": "sciserve"},
    )
    assert [m["role"] for m in engine.calls[0].messages] == ["user"]


def test_a_policy_trained_on_some_domains_gets_awls_layout_only_there(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    """A worker whose policy was trained on AWL's layout for PDE (`awl_domains`) serves
    a PDE question in it with no prompt_style sent (its domain read from its words),
    and a math question in the sciserve layout it keeps."""
    options = PipelineOptions(awl_domains=frozenset({"pde"}))
    result, engine = _solve_pde(solve, tool_servers, pipeline_options=options)
    assert engine.calls[0].messages[0]["content"] == AWL_SYSTEM_PDE
    generate = result.trace[0].detail
    assert (generate["prompt_style"], generate["domain"]) == ("awl", "pde")
    _, engine, _ = solve(
        [("", "The answer is \\boxed{4}.")], tool_urls=tool_servers, pipeline_options=options
    )
    assert [m["role"] for m in engine.calls[0].messages] == ["user"]  # 2 + 2: sciserve


REACT_CODE = (
    "Thought: multiply\nAction: write_and_run_code\nCode:\n```python\nprint(1234 * 5678)\n```\n"
)
REACT_ANSWER = (
    "Thought: the code printed it\nAction: answer_question\nSolution: 1234 * 5678 = 7006652\n"
    "Answer: 7006652"
)


def test_awl_react_for_math_problems(solve: Solve, tool_servers: dict[str, str]) -> None:
    rules = [("Feedback: Output:", REACT_ANSWER), ("Problem:", REACT_CODE)]
    result, engine, _ = solve(
        rules,
        problem="What is 1234 * 5678?",
        tool_urls=tool_servers,
        strategy=AWL,
        reference="7006652",
    )
    first = engine.calls[0]
    assert first.messages[0]["content"] == AWL_SYSTEM_REACT
    assert first.messages[1]["content"] == "Problem: What is 1234 * 5678?"
    assert first.sampling.stop == ("Feedback",)
    feedback = engine.calls[1].messages[-1]
    assert feedback == {"role": "user", "content": "Feedback: Output:\n7006652\n"}
    assert result.answer == "7006652" and result.correct is True
    assert result.trace[0].detail["domain"] == "math"
    assert result.trace[0].detail["decisions"] == ["tool"]


@pytest.mark.parametrize(
    ("problem", "options", "domain"),
    [
        (PDE_QUESTION, ["1", "2"], "pde"),
        (
            "A double pendulum starts at 30 degrees; what is the final velocity?",
            ["1", "2"],
            "mechanics",
        ),
        (
            "Under SSP245, by how much does warming change if CO2 emissions drop 10%?",
            ["1", "2"],
            "climate",
        ),
        (
            "How many days until the infection prevalence peaks in California?",
            ["1", "2"],
            "epidemiology",
        ),
        ("What is the sum of the roots of x^2 - 5x + 6?", None, "math"),
        ("Which of these words is a noun?", ["run", "table"], None),
    ],
)
def test_the_domain_classifier(problem: str, options: list[str] | None, domain: str | None) -> None:
    assert classify_domain(problem, options) == domain


def test_a_mujoco_scene_question_is_shown_its_scene_tool_as_the_teacher_shows_it(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    """AWL's layout: one scene, one tool, in the policy's view of its schema (no server
    knobs, no validation detail), the same view the teacher's trajectories were
    written in (contract.tool_specs.policy_tools)."""
    import httpx

    from contract.tool_specs import policy_tools

    problem = (
        "A ball is released from rest at a height of 5 m and observed for 2 seconds.\n\n"
        "What is its height after 1 second?"
    )
    result, engine, _ = solve(
        [("", ANSWER_B)],
        problem=problem,
        options=["0.1", "0.5", "1.0", "2.0"],
        tool_urls=tool_servers,
        strategy={**AWL, "domain": "mechanics"},
    )
    assert result.trace[0].detail["tools_shown"] == ["ball_simulation"]
    turn = engine.calls[0].messages[1]["content"]
    assert '"title"' not in turn and '"numerics"' not in turn
    manifest = httpx.get(f"{tool_servers['mechanics']}/manifest", timeout=30).json()
    specs = manifest["tools"] if isinstance(manifest, dict) else manifest
    [shown] = policy_tools(problem, "mechanics", [s for s in specs if "function" in s])
    assert json.dumps(shown, indent=4, ensure_ascii=False) in turn
