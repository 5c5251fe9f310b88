"""The shared reading of AWL's templated questions, on AWL's own test sets: every
question's parameters are read, and a MuJoCo question's scene names its one tool."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from contract.awl_questions import (
    SCENES,
    asked_number,
    choose,
    option_letter,
    parse_mujoco,
    parse_pde,
    scene_tool,
    served_options,
)

DATA = Path(os.environ.get("SCISERVE_AWL_DATA", Path(__file__).parents[3] / "shared/data/awl"))


def _test_set(name: str) -> list[dict[str, Any]]:
    if not (DATA / name).exists():
        pytest.skip(f"AWL test sets not found at {DATA} (set SCISERVE_AWL_DATA)")
    rows: list[dict[str, Any]] = json.loads((DATA / name).read_text())
    return rows


def test_every_pde_question_is_read() -> None:
    rows = _test_set("pde.json")
    assert len(rows) == 120
    assert all(parse_pde(row["question"]) is not None for row in rows)


def test_every_mujoco_question_is_read_and_its_scene_names_its_tool() -> None:
    rows = _test_set("mujoco.json")
    assert len(rows) == 280
    tools = set()
    for row in rows:
        parsed = parse_mujoco(row["Question"])
        assert parsed is not None, row["Question"][:80]
        assert scene_tool(row["Question"]) == parsed[0]
        tools.add(parsed[0])
    assert tools == {tool for _, tool in SCENES}


def test_a_question_of_no_scene_has_no_tool() -> None:
    assert scene_tool("What is 15% of 80?") is None
    assert parse_mujoco("What is 15% of 80?") is None


def test_served_options_read_back_as_awl_wrote_them() -> None:
    served = ["0.15", "-1.2", "[0.1, 0.5)", "Stable"]
    assert served_options(served) == [0.15, -1.2, "[0.1, 0.5)", "Stable"]
    assert option_letter(served_options(["1.0", "2.0", "3.0"]), 2.2) == "B"
    assert option_letter(["[0, 1)", "[1, 5)"], 3.0) == "B"


def test_the_asked_number_and_the_marked_option() -> None:
    numbers = [1.0, -3.0, 2.0]
    assert asked_number(numbers, "What is the final x-position of the ball?") == 2.0
    assert asked_number(numbers, "What is the maximum absolute velocity?") == 3.0
    ask = "What is the range of x-positions that the ball occupies?"
    assert choose(["[-3.0, 2.0]", "[2.0, 7.0]"], numbers, ask) == ("A", [-3.0, 2.0])
