"""What every dataset builder shares: reading a record's stages, grading answers, and
writing chat-format JSONL with its card.

Formats (the conversational formats trl's trainers accept):
- SFT: `{"prompt": [messages], "completion": [{"role": "assistant", ...}]}` — the loss
  is on the completion only, and the prompt is the conversation exactly as the worker
  sent it to the engine (taken from the trace, never rebuilt), so a trained adapter
  sees at serving time the text it was trained on.
- DPO: `{"prompt": [messages], "chosen": [assistant turn], "rejected": [assistant turn]}`.
Every example also carries `meta` (record id, kind, label), which trl ignores.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.answers import ResolvedType, is_correct

Record = dict[str, Any]
Example = dict[str, Any]


def stages(record: Record, name: str) -> list[Record]:
    """The record's stage events of one name, in order."""
    return [stage for stage in record["stages"] if stage["stage"] == name]


def problem_key(record: Record) -> str:
    """Records of the same question (problem and options) group together."""
    request = record["request"]
    return json.dumps([request["problem"], request.get("options")], ensure_ascii=False)


def graded(record: Record, answer: str | None) -> bool | None:
    """An answer against the record's reference; None when the request had none."""
    request = record["request"]
    if request.get("reference") is None:
        return None
    answer_type: ResolvedType = record["answer_type"]
    return is_correct(answer, request["reference"], answer_type, request.get("options"))


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sft(messages: Sequence[dict[str, str]], completion: str, **meta: Any) -> Example:
    prompt = [dict(m) for m in messages]
    return {"prompt": prompt, "completion": assistant(completion), "meta": meta}


def group_by_problem(records: Iterable[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[problem_key(record)].append(record)
    return dict(groups)


def balance(
    examples: list[Example], label: Callable[[Example], str], rng: random.Random
) -> list[Example]:
    """Down-sample every label to the rarest one's count (ART: balanced classes)."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[label(example)].append(example)
    if len(by_label) < 2:
        return []
    size = min(len(group) for group in by_label.values())
    kept = [e for group in by_label.values() for e in rng.sample(group, size)]
    rng.shuffle(kept)
    return kept


def upsample(first: list[Example], second: list[Example], rng: random.Random) -> list[Example]:
    """AWL's balance: repeat the smaller set until both are the same size."""
    if not first or not second:
        return [*first, *second]
    small, large = sorted((first, second), key=len)
    repeated = [small[i % len(small)] for i in range(len(large))]
    merged = [*large, *repeated]
    rng.shuffle(merged)
    return merged


@dataclass
class Dataset:
    """A built dataset: the examples and the counts its card reports."""

    kind: str
    paper: str
    examples: list[Example]
    counts: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def write(self, out: Path, sources: Sequence[Path], seed: int) -> Path:
        """`out` (JSONL) and `out` with `.card.json`: counts, source, seed, paper section."""
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as handle:
            for example in self.examples:
                handle.write(json.dumps(example, ensure_ascii=False) + "\n")
        card = {
            "kind": self.kind,
            "paper": self.paper,
            "examples": len(self.examples),
            "counts": self.counts,
            "params": self.params,
            "sources": [str(s) for s in sources],
            "seed": seed,
            "format": "dpo" if self.examples and "chosen" in self.examples[0] else "sft",
        }
        card_path = out.with_suffix(".card.json")
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        return card_path
