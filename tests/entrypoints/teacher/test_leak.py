"""The leak check: no question, parameter tuple or option list of AWL's PDE and MuJoCo
test items in generated training data; a planted test item fails it.

Real tool servers make the generated sets; no test doubles.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from entrypoints.teacher import pde
from entrypoints.teacher.generate import generate
from entrypoints.teacher.leak import (
    LeakError,
    ReservedKeys,
    check_no_leaks,
    find_leaks,
    item_scenario,
    load_test_sets,
    scenario_key,
)
from entrypoints.teacher.problems import Problem, problem_rng, split_of
from workers.tools.client import ToolClient


def test_the_reserved_keys_cover_every_test_item(reserved: ReservedKeys) -> None:
    assert reserved.items == 400
    assert len(reserved.scenarios) >= 300  # PDE questions share setups five at a time
    assert len(reserved.questions) == 400


async def test_generated_sets_hold_no_test_item(tools: ToolClient, reserved: ReservedKeys) -> None:
    for domain, count in (("pde", 8), ("mechanics", 4)):
        made, _ = await generate(domain, count, 11, tools, reserved=reserved)
        assert made
        assert find_leaks(made, reserved) == []
        check_no_leaks(made, reserved)


def _planted(awl_data: Path, domain: str, name: str, index: int) -> Problem:
    """AWL's test item as a generated problem would carry it."""
    row = json.loads((awl_data / name).read_text())[index]
    question = row.get("question", row.get("Question"))
    options = row.get("options", row.get("Options"))
    scenario = item_scenario(domain, question)
    assert scenario is not None
    return Problem(
        id="planted", domain=domain, template="planted", form="choice", split="train", seed=0,
        question=question, options=[str(o) for o in options],
        reference=row.get("correct", row.get("Correct")), answer_type="choice", tool="",
        arguments={}, value=None, raw_options=options, scenario=scenario,
    )  # fmt: skip


async def test_a_planted_test_item_fails_the_check(
    tools: ToolClient, reserved: ReservedKeys, awl_data: Path
) -> None:
    made, _ = await generate("pde", 3, 12, tools, reserved=reserved)
    for domain, name in (("pde", "pde.json"), ("mechanics", "mujoco.json")):
        planted = _planted(awl_data, domain, name, 7)
        with pytest.raises(LeakError, match=f"{name}:7"):
            check_no_leaks([*made, planted], reserved)
        assert {leak.what for leak in find_leaks([planted], reserved)} == {
            "question", "parameters", "options",
        }  # fmt: skip
        # Each key alone is caught: a test run under a new question, a test item's
        # options in another order under a new question and run.
        fresh = made[0]
        same_run = replace(fresh, domain=domain, scenario=planted.scenario)
        assert [leak.what for leak in find_leaks([same_run], reserved)] == ["parameters"]
        options = list(planted.raw_options or [])
        random.Random(0).shuffle(options)
        same_options = replace(fresh, raw_options=options)
        assert [leak.what for leak in find_leaks([same_options], reserved)] == ["options"]
        same_question = replace(fresh, question="  " + planted.question.replace("\n", "\n "))
        assert [leak.what for leak in find_leaks([same_question], reserved)] == ["question"]


async def test_the_generator_draws_again_over_a_test_items_parameters(
    tools: ToolClient, awl_data: Path
) -> None:
    """Reserve the setup a seed's first problem would have: the set differs there."""
    seed = next(
        s for s in range(100)
        if split_of("pde", pde.draw(problem_rng("pde", "train", s, 0)).scenario) == "train"
    )  # fmt: skip
    first = pde.draw(problem_rng("pde", "train", seed, 0))
    reserved = load_test_sets(awl_data)
    plain, _ = await generate("pde", 1, seed, tools, reserved=reserved)
    assert plain[0].scenario == first.scenario
    reserved.scenarios[scenario_key("pde", first.scenario)] = "planted"
    again, skipped = await generate("pde", 1, seed, tools, reserved=reserved)
    assert again[0].scenario != first.scenario
    assert skipped["a test item's parameters"] == 1


def test_missing_test_sets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="SCISERVE_AWL_DATA"):
        load_test_sets(tmp_path)
