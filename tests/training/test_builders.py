"""Dataset builders on small real traces (tests/training/conftest.py): counts, labels,
the served prompts kept verbatim, cards, and the format trl's trainers accept.

No test double here beyond the scripted engine that wrote the traces (named there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.build import KINDS, build
from training.examples import Dataset
from training.records import FORMAT, RecordError, RecordFilter, export, read_records
from workers import traces


def built(kind: str, trace_dir: Path, tmp_path: Path, **params: Any) -> tuple[Dataset, dict]:
    dataset, card = build(kind, [trace_dir], tmp_path / f"{kind}.jsonl", seed=3, **params)
    return dataset, json.loads(card.read_text())


def test_the_reader_knows_the_writers_format(trace_dir: Path) -> None:
    assert (FORMAT, traces.VERSION) == (traces.FORMAT, 1)
    assert len(list(read_records([trace_dir]))) == 10


def test_tua_labels_easy_and_hard_by_direct_accuracy(trace_dir: Path, tmp_path: Path) -> None:
    dataset, card = built("tua", trace_dir, tmp_path)
    assert card["counts"]["easy"] == 1 and card["counts"]["hard"] == 1
    assert card["params"]["k_min"] == card["params"]["k_max"] == 4
    easy = [e for e in dataset.examples if e["meta"]["label"] == "easy"]
    hard = [e for e in dataset.examples if e["meta"]["label"] == "hard"]
    assert card["counts"]["easy_examples"] == 1 and card["counts"]["hard_examples"] == 2
    assert len(easy) == len(hard) == 2  # AWL: the smaller set repeated to balance
    # Easy: the adaptive prompt as served, then an immediate answer_question call.
    prompt = easy[0]["prompt"][-1]["content"]
    assert prompt.startswith("Given the following functions") and "What is 2 + 2?" in prompt
    call = json.loads(easy[0]["completion"][0]["content"])
    assert call["name"] == "answer_question" and call["parameters"]["answer"] == "4"
    assert easy[0]["meta"]["direct_accuracy"] == 0.75
    # Hard: the tool call, then the answer after the tool's result (a tool turn).
    turns = sorted({json.dumps(e, sort_keys=True) for e in hard})
    first, second = sorted((json.loads(t) for t in turns), key=lambda e: e["meta"]["turn"])
    assert json.loads(first["completion"][0]["content"])["name"] == "write_and_run_code"
    assert second["prompt"][-1]["role"] == "tool" and "56211" in second["prompt"][-1]["content"]
    assert json.loads(second["completion"][0]["content"])["parameters"]["answer"] == "56211"


def test_wkd_turns_a_tool_solution_into_a_direct_one(trace_dir: Path, tmp_path: Path) -> None:
    dataset, card = built("wkd", trace_dir, tmp_path)
    assert card["counts"]["solved_with_tools"] == 1
    [example] = dataset.examples
    assert example["prompt"][-1]["content"].startswith("Please answer the following question.")
    assert "123 * 457" in example["prompt"][-1]["content"]
    assert example["completion"][0]["content"].endswith("\\boxed{56211}")


def test_score_keeps_fixes_and_kept_correct_pairs_only(trace_dir: Path, tmp_path: Path) -> None:
    dataset, card = built("score", trace_dir, tmp_path)
    assert card["counts"]["i_to_c"] == 1 and card["counts"]["c_to_c"] == 1
    labels = sorted(e["meta"]["label"] for e in dataset.examples)
    assert labels == ["c_to_c", "i_to_c"]
    fix = next(e for e in dataset.examples if e["meta"]["label"] == "i_to_c")
    assert fix["prompt"][-2] == {"role": "assistant", "content": "\\boxed{7}"}
    assert fix["prompt"][-1]["content"].startswith("There might be an error")
    assert fix["completion"][0]["content"] == "Corrected: \\boxed{6}"


def test_art_asker_and_truster_are_labelled_and_balanced(trace_dir: Path, tmp_path: Path) -> None:
    asker, card = built("asker", trace_dir, tmp_path)
    assert card["counts"]["refine"] == 1 and card["counts"]["no_refine"] == 1
    targets = {e["meta"]["label"]: e["completion"][0]["content"] for e in asker.examples}
    assert targets["refine"].endswith("Refine: yes") and targets["no_refine"].endswith("Refine: no")
    assert all(e["prompt"][0]["content"].startswith("You check a solution") for e in asker.examples)
    truster, card = built("truster", trace_dir, tmp_path)
    assert card["counts"]["initial_right"] == 1 and card["counts"]["refined_right"] == 1
    for example in truster.examples:
        shown = example["prompt"][0]["content"]
        right = "\\boxed{2}" if example["meta"]["label"] == "initial" else "\\boxed{14}"
        position = int(example["completion"][0]["content"].removeprefix("Solution "))
        assert right in shown.split(f"Solution {position}:\n")[1].split("Solution ")[0]


def test_tpo_pairs_need_revealed_thoughts(trace_dir: Path, tmp_path: Path) -> None:
    dataset, card = built("tpo", trace_dir, tmp_path)
    assert card["counts"] == {"records": 2, "thoughts_hidden": 1, "one_sided": 0, "pairs": 1}
    [pair] = dataset.examples
    assert pair["chosen"][0]["content"].endswith("\\boxed{4}")
    assert pair["rejected"][0]["content"].endswith("\\boxed{5}")
    assert "Here is my thought process:" in pair["chosen"][0]["content"]
    assert card["format"] == "dpo" and card["seed"] == 3


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_accepted_by_trl(
    kind: str, trace_dir: Path, tmp_path: Path, tiny_model: Any
) -> None:
    """trl's own dataset checks: conversational prompt-completion for SFT, conversational
    preference for DPO, with the chat template applied to every example."""
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    dataset, _ = built(kind, trace_dir, tmp_path)
    assert dataset.examples, kind
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
    for example in dataset.examples:
        row = {k: v for k, v in example.items() if k != "meta"}
        assert is_conversational(row)
        rendered = maybe_apply_chat_template(row, tokenizer)
        assert rendered["prompt"].endswith("<|im_start|>assistant\n")


def test_export_filters_by_strategy_correctness_and_time(trace_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert export([trace_dir], out, RecordFilter(strategy="art")) == (2, 10)
    assert export([trace_dir], out, RecordFilter(correct="true", strategy="vote"))[0] == 1
    assert export([trace_dir], out, RecordFilter(correct="false", strategy="vote"))[0] == 1
    assert export([trace_dir], out, RecordFilter(correct="unknown")) == (0, 10)
    assert export([trace_dir], out, RecordFilter(until=0.0)) == (0, 10)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert kept == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "other", "version": 9}\n')
    with pytest.raises(RecordError, match=r"bad\.jsonl:1 is not a sciserve\.trace record"):
        list(read_records([bad]))


def test_truster_pairs_hold_one_right_and_one_wrong_sample_in_both_orders(
    trace_dir: Path, tmp_path: Path
) -> None:
    from contract.answers import extract_answer
    from training.art import heldout_problem

    dataset, card = built("truster-pairs", trace_dir, tmp_path, split="all")
    assert card["counts"]["pairs"] >= 2 and len(dataset.examples) == 2 * card["counts"]["pairs"]
    targets = {"Solution 1": 0, "Solution 2": 0}
    for example in dataset.examples:
        prompt = example["prompt"][0]["content"]
        assert "Which solution is correct?" in prompt  # the served Truster prompt
        target = example["completion"][0]["content"]
        targets[target] += 1
        first, second = prompt.split("Solution 1:\n", 1)[1].split("\n\nSolution 2:\n", 1)
        second = second.split("\n\n", 1)[0]
        answers = [extract_answer(text, "number") for text in (first, second)]
        assert sorted(map(str, answers)) == ["4", "5"], answers  # one right (4), one wrong
        assert answers[int(target[-1]) - 1] == "4"
    assert targets["Solution 1"] == targets["Solution 2"]  # both orders: no position signal
    # The split is by problem: a problem's pairs are all on one side.
    train, _ = built("truster-pairs", trace_dir, tmp_path, split="train")
    heldout, _ = built("truster-pairs", trace_dir, tmp_path, split="heldout")
    sides = {heldout_problem("What is 2 + 2?")}
    assert len(train.examples) + len(heldout.examples) == len(dataset.examples)
    assert (len(heldout.examples) > 0) == sides.pop()
