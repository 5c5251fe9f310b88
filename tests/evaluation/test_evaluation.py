"""`sciserve eval`: dataset layouts, and the CLI end to end against the live tiny-model
service (real vLLM, real HTTP), including the TUA baseline run and the plot."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contract.schemas import SolveRequest, Strategy
from evaluation.datasets import Item, load_items
from evaluation.runner import item_rule, score, summarize
from tests.conftest import Service


def test_awl_layouts_and_jsonl_load(tmp_path: Path) -> None:
    layouts = {
        "climate.json": [{"Question": "Q?", "Options": ["a", "b"], "Correct": "B"}],
        "pde.json": [{"question": "Q?", "options": ["a", "b"], "correct": "A"}],
        "mujoco.json": [{"Question": "Q?", "Options": [-2.49, -1.56, 3], "Correct": "C"}],
        "epi.json": [
            {"question": "Q?", "options": ["a", "b"], "correct_option": "B", "scenario": 1}
        ],
        "math.json": [{"problem": "1+1?", "answer": 2.0, "level": "Level 1"}],
        "scibench.json": [{"problem_text": "E?", "unit": " $\r\nJ\r\n$", "answer_number": "1.70"}],
    }
    for name, rows in layouts.items():
        (tmp_path / name).write_text(json.dumps(rows))
    choice = load_items(str(tmp_path / "climate.json"))[0]
    assert (choice.reference, choice.options, choice.answer_type) == ("B", ["a", "b"], "choice")
    assert load_items(str(tmp_path / "epi.json"))[0].reference == "B"
    assert choice.domain == "climate" and load_items(str(tmp_path / "pde.json"))[0].domain == "pde"
    assert load_items(str(tmp_path / "scibench.json"))[0].domain == "math"
    numeric = load_items(str(tmp_path / "mujoco.json"))[0]
    assert numeric.options == ["-2.49", "-1.56", "3"]  # as AWL prints them; /solve takes text
    SolveRequest(problem=numeric.problem, options=numeric.options)
    assert load_items(str(tmp_path / "math.json"))[0].reference == "2.0"
    sci = load_items(str(tmp_path / "scibench.json"))[0]
    assert sci.reference == "1.70" and sci.problem.endswith("in units of $ J $.")
    (tmp_path / "open.json").write_text(json.dumps([{"question": "Design a route."}]))
    with pytest.raises(ValueError, match="no reference answer"):
        load_items(str(tmp_path / "open.json"))
    (tmp_path / "mine.jsonl").write_text(
        '{"problem": "2+2?", "answer": "4"}\n\n{"problem": "3+3?", "answer": 6}\n'
    )
    assert [i.reference for i in load_items(str(tmp_path / "mine.jsonl"))] == ["4", "6"]
    (tmp_path / "generated.jsonl").write_text(
        '{"problem": "A", "answer": "1", "domain": "mujoco"}\n'
        '{"problem": "B", "answer": "2", "domain": "gsm_symbolic"}\n'
        '{"problem": "C", "answer": "3", "domain": "climate"}\n'
    )  # the teacher's held-out sets: served in their domain's layout
    domains = [i.domain for i in load_items(str(tmp_path / "generated.jsonl"))]
    assert domains == ["mechanics", "math", "climate"]
    (tmp_path / "odd.jsonl").write_text('{"problem": "A", "answer": "1", "domain": "poetry"}\n')
    with pytest.raises(ValueError, match=r"odd\.jsonl:1: unknown domain 'poetry'"):
        load_items(str(tmp_path / "odd.jsonl"))
    gsm = load_items("gsm_symbolic", limit=3, seed=1234)
    assert len(gsm) == 3 and gsm == load_items("gsm_symbolic", limit=3, seed=1234)


def test_shared_awl_sets_load_when_present() -> None:
    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "awl"
    if not data.exists():
        pytest.skip("the AWL test sets are not next to this checkout")
    sets = {
        name: load_items(str(data / f"{name}.json"))
        for name in ("climate", "epidemiology", "pde", "mujoco", "math", "scibench")
    }
    for items in sets.values():  # each item is a valid /solve request
        for item in items:
            SolveRequest(problem=item.problem, options=item.options)
    sizes = {name: len(items) for name, items in sets.items()}
    assert sizes == {
        "climate": 120,
        "epidemiology": 90,
        "pde": 120,
        "mujoco": 280,
        "math": 170,
        "scibench": 120,
    }


def runs_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["strategy"]: run["metrics"] for run in report["runs"]}


def test_gsm_symbolic_grades_exactly_and_the_report_names_the_rule() -> None:
    """gsm_symbolic answers are integers: 300 for 310 was graded right by 5%."""
    [item] = load_items("gsm_symbolic", limit=1, seed=1234)
    assert item.rel_tol == 0.0 and item_rule(item) == "number: exact"
    wrong = replace(item, reference="310")
    body = {"answer": "300", "correct": True, "initial_answer": "310", "usage": {}}
    row = score(wrong, body, 1.0)
    assert row.correct is False and row.initial_correct is True  # the service said True
    close = replace(item, reference="310", rel_tol=0.05)
    assert score(close, body, 1.0).correct is True
    assert item_rule(close) == "number: math.isclose(rel_tol=0.05)"


def test_truster_position_bias_from_the_trace() -> None:
    item = Item("q", "What is 2 + 2?", "4", None, "number", 0.0)
    trust: dict[str, Any] = {
        "stage": "art_trust",
        "completion_tokens": 1,
        "thought_tokens": 0,
        "detail": {
            "choices": ["refined"],
            "positions": [1],
            "answers_initial": ["5"],
            "answers_refined": ["4.1"],
            "correct_initial": [False],
            "correct_refined": [True],  # the service's 5%; the dataset is exact
        },
    }
    rows = [
        score(item, {"answer": "4.1", "usage": {}, "trace": [trust]}, 1.0),
        score(
            item,
            {
                "answer": "4",
                "usage": {},
                "trace": [{**trust, "detail": {**trust["detail"], "positions": [2]}}],
            },
            1.0,
        ),
        score(
            item,
            {
                "answer": "4",
                "usage": {},
                "trace": [{**trust, "detail": {**trust["detail"], "positions": [1]}}],
            },
            1.0,
        ),
    ]
    assert rows[0].truster_refined_correct == [False]  # regraded exactly
    metrics = summarize(rows, Strategy(tools="never", art=True), grading=["number: exact"])
    assert metrics["truster_first_rate"] == pytest.approx(2 / 3)
    assert metrics["truster_readable_rate"] == 1.0
    assert metrics["truster_position_bias"] == pytest.approx(2 / 3 - 0.5)
    assert metrics["grading"] == ["number: exact"]
    assert summarize(rows, Strategy(tools="never"))["truster_position_bias"] is None
    unreadable = score(
        item,
        {
            "answer": "5",
            "usage": {},
            "trace": [{**trust, "detail": {**trust["detail"], "positions": [None]}}],
        },
        1.0,
    )
    metrics = summarize([*rows, unreadable], Strategy(tools="never", art=True))
    assert metrics["truster_readable_rate"] == pytest.approx(3 / 4)
    assert metrics["truster_first_rate"] == pytest.approx(2 / 3)  # over readable ones only


def test_eval_cli_against_a_live_server(service: Service, tmp_path: Path) -> None:
    dataset = tmp_path / "tiny.jsonl"
    rows = [{"problem": f"What is {a} + {a}?", "answer": str(2 * a)} for a in range(1, 5)]
    dataset.write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "report.json"
    strategies = ["-s", "direct", "-s", "adaptive", "-s", "attempts:2,art"]
    command = [sys.executable, "-m", "entrypoints.cli", "eval", str(dataset), "--url", service.url]
    command += [*strategies, "--max-tokens", "8", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    for key in (
        "n",
        "accuracy",
        "tua",
        "acc_t1",
        "acc_t2",
        "delta",
        "delta_i2c",
        "delta_c2i",
        "art_refine_rate",
        "truster_win_rate",
        "tokens_per_question",
        "seconds_per_question",
        "items",
    ):
        assert key in report, key
    assert report["n"] == 4 and len(report["items"]) == 4 and report["strategy"] == "direct"
    assert report["grading"] == ["number: math.isclose(rel_tol=0.05)"]
    assert "truster_position_bias" in runs_of(report)["attempts:2,art"]
    assert report["tua"] is None and report["acc_t1"] is None  # direct has neither
    runs = {run["strategy"]: run["metrics"] for run in report["runs"]}
    adaptive = runs["adaptive"]
    assert adaptive["tua"] is not None and sum(adaptive["tua_table"].values()) == 4
    refined = runs["attempts:2,art"]
    assert refined["acc_t1"] is not None and refined["art_refine_rate"] is not None
    assert refined["delta"] == pytest.approx(refined["delta_i2c"] - refined["delta_c2i"])
    assert 0 < refined["tokens_per_question_t1"] < refined["tokens_per_question"]
    assert all(run["tokens_per_question"] > 0 for run in runs.values())
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sciserve eval" in done.stdout and "wrote" in done.stdout
    # lm-evaluation-harness's files, one folder per strategy, beside the report.
    lm_eval = tmp_path / "report-lm-eval"
    assert sorted(p.name for p in lm_eval.iterdir()) == ["adaptive", "attempts__2__art", "direct"]
    [results_file] = (lm_eval / "adaptive").glob("results_*.json")
    results = json.loads(results_file.read_text())
    assert results["results"]["tiny"]["exact_match,final-answer"] == adaptive["accuracy"]
    assert results["config"]["model"] == "sciserve" and results["config"]["strategy"]
    assert results["sciserve"]["tua"] == adaptive["tua"]
    [samples_file] = (lm_eval / "adaptive").glob("samples_tiny_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert [s["target"] for s in samples] == [row["answer"] for row in rows]
    assert all(s["resps"][0][0] for s in samples)  # the answer's text, as /solve returned it


def test_eval_compares_adapter_arms_with_a_bootstrap_interval(
    service: Service, tmp_path: Path
) -> None:
    """`--adapters policy=base,policy=policy`: each strategy runs on the base model and on
    the policy adapter (the tiny model's random LoRA, which changes the text), on the
    same questions, and the report gives the difference with its 95% interval."""
    dataset = tmp_path / "tiny.jsonl"
    rows = [{"problem": f"What is {a} + {a}?", "answer": str(2 * a)} for a in range(1, 7)]
    dataset.write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "arms.json"
    command = [sys.executable, "-m", "entrypoints.cli", "eval", str(dataset), "--url", service.url]
    command += ["-s", "direct", "-s", "adaptive", "--max-tokens", "8", "--out", str(out)]
    command += ["--adapters", "policy=base,policy=policy"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    runs = {run["strategy"]: run for run in report["runs"]}
    assert set(runs) == {
        "direct [policy=base]",
        "direct [policy=policy]",
        "adaptive [policy=base]",
        "adaptive [policy=policy]",
    }
    assert runs["direct [policy=base]"]["adapters"] == {"policy": "base"}
    lm_eval = tmp_path / "arms-lm-eval"
    texts = {}
    for arm in ("base", "policy"):
        [samples_file] = (lm_eval / f"direct__policy={arm}").glob("samples_*.jsonl")
        texts[arm] = [
            json.loads(line)["resps"][0][0] for line in samples_file.read_text().splitlines()
        ]
    assert texts["base"] != texts["policy"], "the arms ran on different weights"
    comparisons = {c["strategy"]: c for c in report["comparisons"]}
    assert set(comparisons) == {"direct", "adaptive"}
    adaptive = comparisons["adaptive"]
    assert adaptive["first"] == {"policy": "base"} and adaptive["second"] == {"policy": "policy"}
    assert adaptive["n"] == 6
    for name in ("accuracy", "tua", "tool_use_rate", "tokens_per_question"):
        value = adaptive["metrics"][name]
        first = runs["adaptive [policy=base]"]["metrics"][name]
        second = runs["adaptive [policy=policy]"]["metrics"][name]
        assert value["first"] == first and value["second"] == second, name
        if first is not None and second is not None:
            assert value["diff"] == pytest.approx(second - first)
            assert value["ci95_low"] <= value["diff"] <= value["ci95_high"], name
    assert "adapter arms" in done.stdout


@pytest.mark.parametrize("text", ["policy=base", "policy", "policy=,policy=v2", "=x,policy=y"])
def test_adapter_arms_are_role_equals_name_and_at_least_two(text: str) -> None:
    from evaluation.harness import parse_arms

    with pytest.raises(ValueError, match="--adapters"):
        parse_arms(text)
    assert parse_arms("policy=base,policy=v2+truster=t2") == [
        {"policy": "base"},
        {"policy": "v2", "truster": "t2"},
    ]
