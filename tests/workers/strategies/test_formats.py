"""Reading model outputs and the metric formulas, checked against hand-worked cases."""

from __future__ import annotations

import json

import pytest

from contract.answers import is_correct
from contract.role_prompts import truster_prompt
from evaluation.metrics import ScoreDeltas, ToolTable, art_refine_rate, truster_win_rate
from evaluation.runner import parse_strategy
from workers.strategies.art import parse_asker, parse_truster
from workers.strategies.reading import answer_call_text, parse_function_call, split_thought
from workers.strategies.select import majority


def test_awl_calls_parse_in_the_formats_adapters_emit() -> None:
    awl = '{"name": "setup_and_solve", "parameters": {"dimension": "1D", "D": 0.5}}'
    call = parse_function_call(f"I will use the solver.\n{awl}\nThen read it.")
    assert call is not None and call.name == "setup_and_solve" and call.parameters["D"] == 0.5
    qwen = (
        '<tool_call>\n{"name": "write_and_run_code", '
        '"arguments": {"thought": "t", "code": "print(1)"}}\n</tool_call>'
    )
    assert parse_function_call(qwen).parameters["code"] == "print(1)"  # type: ignore[union-attr]
    as_string = json.dumps({"name": "f", "arguments": json.dumps({"x": 1})})
    assert parse_function_call(as_string).parameters == {"x": 1}  # type: ignore[union-attr]
    assert parse_function_call('{"answer": 3} and {not json') is None
    assert parse_function_call("The answer is 4.") is None


def test_answer_question_renders_to_an_extractable_solution() -> None:
    call = parse_function_call(
        '{"name": "answer_question", "parameters": {"thought": "t", '
        '"sloving_process": "48/2 = 24, 48 + 24 = 72", "answer": "72"}}'
    )
    assert call is not None and call.is_answer
    assert answer_call_text(call) == "48/2 = 24, 48 + 24 = 72\n\nThe answer is 72"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Here is my thought process: secret Here is my response: 4", ("secret", "4", False)),
        ("preamble Here is my thought process:\nA\nHere is my response:\nB", ("A", "B", False)),
        ("no markers at all, answer 4", (None, "no markers at all, answer 4", True)),
        (
            "Here is my thought process: only thinking",
            (None, "Here is my thought process: only thinking", True),
        ),
        ("Here is my response: x. Here is my response: y", ("Here is my response: x.", "y", False)),
    ],
)
def test_tpo_split(text: str, expected: tuple[str | None, str, bool]) -> None:
    assert split_thought(text) == expected


def test_asker_and_truster_formats() -> None:
    verdict = parse_asker("Q: What is the rate?\n2. Q2: Is the unit right?\nRefine: Yes")
    assert verdict.questions == ["What is the rate?", "Is the unit right?"] and verdict.refine
    assert parse_asker("Q: a\nRefine: yes\nOn reflection, Refine: no").refine is False
    assert parse_asker("looks fine").readable is False
    assert parse_truster("Solution 2", 2) == 1 and parse_truster("**Solution 1** is right", 2) == 0
    assert parse_truster("Solution 3", 2) is None and parse_truster("2", 2) == 1
    assert parse_truster("neither", 2) is None


@pytest.mark.parametrize("count", [2, 3])
def test_truster_prompt_names_the_labels_it_can_read(count: int) -> None:
    """Version 1 asked for "'Solution N'" and the 0.5B demo model answered exactly that
    placeholder on every question; the reply it is asked for must be one it can give."""
    prompt = truster_prompt("What is 2 + 2?", [f"It is {n}." for n in range(count)])
    assert "Solution N" not in prompt
    asked = prompt.rsplit("\n", 1)[-1]
    for number in range(1, count + 1):
        assert f"'Solution {number}'" in asked
        assert parse_truster(f"Solution {number}", count) == number - 1


def test_majority_ties_keep_first_appearance_and_ignore_none() -> None:
    assert majority(["4", None, "5", "5", "4"])[0] == ["4", "5"]
    assert majority(["4", None, "5", "5"])[0] == ["5"]
    assert majority([None, None])[0] == []


def test_tua_from_a_two_by_two_table() -> None:
    # 10 questions: 6 easy (4 answered without a tool, 2 with), 4 hard (3 tool, 1 not).
    easy = [True] * 6 + [False] * 4
    used = [False] * 4 + [True] * 2 + [True] * 3 + [False]
    table = ToolTable.count(easy, used)
    assert (table.n_easy, table.t_easy, table.t_hard, table.n_hard) == (4, 2, 3, 1)
    assert table.tua == pytest.approx(0.5 * 4 / 6 + 0.5 * 3 / 4)  # 0.7083…
    assert ToolTable.count([True, True], [False, True]).tua == pytest.approx(0.5)  # no hard half


def test_score_deltas_by_hand() -> None:
    t1 = [True, True, False, False, False]
    t2 = [True, False, True, True, False]
    deltas = ScoreDeltas.of(t1, t2)
    assert (deltas.acc_t1, deltas.acc_t2) == (0.4, 0.6)
    assert deltas.delta == pytest.approx(0.2)
    assert (deltas.delta_i2c, deltas.delta_c2i) == (0.4, 0.2)
    assert deltas.delta == pytest.approx(deltas.delta_i2c - deltas.delta_c2i)


def test_art_rates_by_hand() -> None:
    assert art_refine_rate(["refine", "skip", "skip", "refine"]) == 0.5
    # Only the last two choices matter (initial and refined differ in correctness):
    # refined was right and chosen (win), initial was right but refined chosen (loss).
    assert (
        truster_win_rate(
            ["refined", "initial", "refined", "refined"],
            [True, False, False, True],
            [True, False, True, False],
        )
        == 0.5
    )
    assert truster_win_rate(["initial"], [True], [True]) is None


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("104.9", "100", True),
        ("105", "100", True),
        # AWL's math.isclose(rel_tol=0.05) is symmetric: 5% of the larger of the two,
        # so 105.2 passes for 100 (it failed the old one-sided rule), and 105.3 does not.
        ("105.2", "100", True),
        ("105.3", "100", False),
        ("95", "100", True),
        ("94.9", "100", False),
        ("-0.0001", "0", False),
        ("0", "0", True),
    ],
)
def test_five_percent_tolerance(answer: str, reference: str, expected: bool) -> None:
    assert is_correct(answer, reference, "number") is expected
    assert is_correct(reference, answer, "number") is expected  # symmetric


def test_integer_answer_sets_grade_exactly() -> None:
    """gsm_symbolic's tolerance is 0: 300 is not 310 (5% graded it correct)."""
    assert is_correct("300", "310", "number") is True  # the default, AWL's 5%
    assert is_correct("300", "310", "number", rel_tol=0.0) is False
    assert is_correct("310.0", "310", "number", rel_tol=0.0) is True


def test_eval_strategy_specs() -> None:
    assert parse_strategy("direct").tools == "never"
    both = parse_strategy("samples:5,attempts:2")
    assert (both.samples, both.attempts, both.tools) == (5, 2, "never")
    assert parse_strategy("adaptive,art").model_dump()["art"] is True
    with pytest.raises(ValueError, match="Unknown strategy part"):
        parse_strategy("magic")
    with pytest.raises(ValueError):
        parse_strategy("samples:65")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Solution 1 is wrong because it adds. Solution 2 is correct.", 1),
        ("Comparing Solution 1 and Solution 2: the correct one is Solution 1.", 0),
        ("Solution 2 makes an error, so I choose Solution 1.", 0),
        ("Solution 1 is incorrect.", 1),  # the other one of two
        ("Solution 1 and Solution 2 both look plausible.", None),  # no verdict
        ("**Solution 2**", 1),
    ],
)
def test_the_truster_verdict_is_read_from_the_whole_output(text: str, expected: int | None) -> None:
    assert parse_truster(text, 2) == expected


def test_majority_groups_with_an_equivalence() -> None:
    from contract.answers import equivalent

    leaders, votes = majority(
        ["\\frac{1}{2}", "0.5", "x+1", "1+x", "1/2"],
        lambda a, b: equivalent(a, b, "expression"),
    )
    assert leaders == ["\\frac{1}{2}"] and votes == {"\\frac{1}{2}": 3, "x+1": 2}
