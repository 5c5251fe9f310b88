"""Teacher trajectories on the real tool servers (over HTTP): for each domain the
answer is the reference, the conversation is the served layout, and the training
builders read the record back.

No test doubles: the tools, the served reader and the record builder are the real ones.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from contract.awl_questions import scene_tool
from entrypoints.teacher.generate import generate
from entrypoints.teacher.leak import ReservedKeys
from entrypoints.teacher.trajectory import Teacher, record
from training.awl import build_teacher, tool_trajectory
from training.records import read_records
from workers.prompts import AWL_SYSTEM_REACT, AWL_SYSTEMS
from workers.strategies.reading import parse_function_call
from workers.tools.client import ToolClient

CASES = [
    ("pde", "choice"), ("pde", "open"),
    ("mechanics", "choice"), ("mechanics", "open"),
    ("climate", "choice"), ("climate", "open"),
    ("epidemiology", "choice"), ("epidemiology", "open"),
    ("gsm_symbolic", "open"),
]  # fmt: skip


@pytest.mark.parametrize(("domain", "form"), CASES)
async def test_a_teacher_trajectory_is_right_and_read_back(
    domain: str, form: str, tools: ToolClient, reserved: ReservedKeys, tmp_path: Path
) -> None:
    [problem], _ = await generate(domain, 1, 21, tools, form=form, reserved=reserved)
    assert problem.form == form
    trajectory = await Teacher(tools).solve(problem)
    assert trajectory.kept, trajectory.dropped
    assert trajectory.correct and trajectory.answer is not None
    if form == "choice":
        assert trajectory.answer == problem.reference
    else:
        assert float(trajectory.answer) == pytest.approx(float(problem.reference))
    served = "math" if domain == "gsm_symbolic" else domain
    first = trajectory.turns[0].messages
    if served == "math":  # AWL's text ReAct turns
        assert first[0]["content"] == AWL_SYSTEM_REACT
        assert "Action: write_and_run_code" in trajectory.turns[0].output
        assert trajectory.turns[1].messages[-1]["content"].startswith("Feedback: Output:")
    else:
        assert first[0]["content"] == AWL_SYSTEMS[served]
        call = parse_function_call(trajectory.turns[0].output)  # the served reader
        assert call is not None and call.name == problem.tool and "thought" in call.parameters
        feedback = trajectory.turns[1].messages[-1]
        assert feedback["role"] == "user"
        assert feedback["content"].startswith(f"Feedback from '{problem.tool}': ")
        final = parse_function_call(trajectory.turns[1].output)
        assert final is not None and final.is_answer
        shown = trajectory.tools_shown
        assert shown == ([scene_tool(problem.question)] if served == "mechanics" else shown)
        listed = first[1]["content"]
        assert listed.count('"name": "') == len(shown) + 1  # and answer_question
        if served in ("pde", "mechanics"):
            assert trajectory.calls[0].arguments["numerics"] == "awl"
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(record(trajectory), default=str) + "\n")
    [read] = list(read_records([path]))
    assert read["correct"] is True and read["strategy"]["domain"] == served
    assert read["strategy"]["prompt_style"] == "awl" and read["request"]["options"] == (
        problem.options
    )
    assert tool_trajectory(read) == [(t.messages, t.output) for t in trajectory.turns]
    dataset = build_teacher([read])
    assert dataset.counts["trajectories"] == 1 and len(dataset.examples) == 2
    assert {e["meta"]["turn"] for e in dataset.examples} == {0, 1}


async def test_a_wrong_reference_is_not_kept(tools: ToolClient, reserved: ReservedKeys) -> None:
    [problem], _ = await generate("pde", 1, 22, tools, form="choice", reserved=reserved)
    wrong = "A" if problem.reference != "A" else "B"
    trajectory = await Teacher(tools).solve(replace(problem, reference=wrong))
    assert not trajectory.kept
    assert trajectory.dropped == "answer differs from the reference"
