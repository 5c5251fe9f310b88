"""Evaluation items from AWL's test sets, reasoning-gym's gsm_symbolic, or any JSONL.

AWL's files differ in their keys (`Question/Options/Correct`, `question/options/
correct`, `correct_option`, `problem/answer`, `problem_text/answer_number`); each
layout is recognised by its keys. The open-ended sets have no reference answer and are
refused with a message saying so.

Numeric tolerance belongs to the dataset (`Item.rel_tol`): AWL's science sets (MATH,
SciBench) are graded as AWL does, `math.isclose(rel_tol=0.05)`; gsm_symbolic's answers
are integers, so they must match exactly (5% graded 300 right for 310); a JSONL row
may carry its own `rel_tol` (default 0.05).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contract.answers import RELATIVE_TOLERANCE
from contract.schemas import AnswerType

GSM_SYMBOLIC = "gsm_symbolic"
EXACT = 0.0  # integer-answer sets
# AWL's test files by name: the domain of their questions.
AWL_DOMAINS = {
    "mujoco": "mechanics",
    "pde": "pde",
    "climate": "climate",
    "epidemiology": "epidemiology",
    "math": "math",
    "scibench": "math",
}
# A JSONL row's `domain` (the teacher's generated sets write theirs): the served domain.
JSONL_DOMAINS = {**AWL_DOMAINS, "mechanics": "mechanics", "gsm_symbolic": "math"}


@dataclass(frozen=True)
class Item:
    id: str
    problem: str
    reference: str
    options: list[str] | None = None
    answer_type: AnswerType = "auto"
    rel_tol: float = RELATIVE_TOLERANCE  # for numbers; the dataset's rule
    domain: str | None = None  # AWL's sets: the domain the "awl" prompt style needs


def load_items(dataset: str, *, limit: int | None = None, seed: int = 1234) -> list[Item]:
    """`gsm_symbolic` (generated with `seed`), an AWL `.json` file, or a `.jsonl` file
    with `problem`, `answer` and optional `options`."""
    if dataset == GSM_SYMBOLIC:
        return _gsm_symbolic(limit or 50, seed)
    path = Path(dataset)
    if not path.exists():
        raise ValueError(f"No dataset {dataset!r}: give gsm_symbolic or a .json/.jsonl path.")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        items = [_jsonl_item(path, i, row) for i, row in enumerate(rows)]
    else:
        rows = json.loads(path.read_text())
        domain = AWL_DOMAINS.get(path.stem.split("_")[0].lower())
        items = [replace(_awl_item(path, i, row), domain=domain) for i, row in enumerate(rows)]
    return items[:limit] if limit else items


def _gsm_symbolic(size: int, seed: int) -> list[Item]:
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(GSM_SYMBOLIC, seed=seed, size=size)
    return [
        Item(f"gsm_symbolic-{seed}-{i}", row["question"], str(row["answer"]), None, "number", EXACT)
        for i, row in enumerate(dataset)
    ]


def _jsonl_item(path: Path, index: int, row: dict[str, Any]) -> Item:
    if not isinstance(row.get("problem"), str) or "answer" not in row:
        raise ValueError(f"{path}:{index + 1}: a JSONL item needs 'problem' and 'answer'.")
    return Item(
        str(row.get("id", f"{path.stem}-{index}")),
        row["problem"],
        str(row["answer"]),
        row.get("options"),
        row.get("answer_type", "auto"),
        float(row.get("rel_tol", RELATIVE_TOLERANCE)),
        _jsonl_domain(path, index, row.get("domain")),
    )


def _jsonl_domain(path: Path, index: int, domain: Any) -> str | None:
    """A generated held-out set must be served in its domain's AWL layout, as the
    teacher's training problems were; an unknown domain is an error, not a silent
    fallback to classifying."""
    if domain is None:
        return None
    if domain not in JSONL_DOMAINS:
        known = ", ".join(sorted(JSONL_DOMAINS))
        raise ValueError(f"{path}:{index + 1}: unknown domain {domain!r}; known: {known}.")
    return JSONL_DOMAINS[domain]


def _awl_item(path: Path, index: int, row: dict[str, Any]) -> Item:
    item_id = f"{path.stem}-{index}"
    for question, options, correct in (
        ("Question", "Options", "Correct"),
        ("question", "options", "correct"),
        ("question", "options", "correct_option"),
    ):
        if question in row and options in row and correct in row:
            # Many rows list numbers ([39.9, 45.6, …]); AWL prints each with str(), and
            # /solve takes options as text.
            listed = [str(option) for option in row[options]]
            return Item(item_id, row[question], str(row[correct]), listed, "choice")
    if "problem" in row and "answer" in row:
        return Item(item_id, row["problem"], str(row["answer"]), None, "number")
    if "problem_text" in row and "answer_number" in row:
        unit = " ".join(str(row.get("unit", "")).split())
        problem = row["problem_text"] + (f" Give the answer in units of {unit}." if unit else "")
        return Item(item_id, problem, str(row["answer_number"]), None, "number")
    raise ValueError(
        f"{path} item {index} has keys {sorted(row)}: it has no reference answer (an "
        "open-ended set?) and cannot be scored."
    )
