"""What a generated training question is, and what every domain's generator shares.

A generator works in two steps so the reference comes from the real tool:
1. `draw(rng)` → a `Draft`: the question's text (without options), the tool and the
   arguments the text states, and what it asks for — pure, from a seeded rng;
2. the tool runs on those arguments, and `settle(draft, result, rng, form)` reads the
   asked quantity from its result and writes the `Problem`: AWL's options and letter
   (`choice`) or the value itself (`open`).

Held-out sets: every draft's parameter tuple falls on one side of a fixed partition
(`split_of`, a hash), so a training set and a held-out set never share one, whatever
their seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Form = Literal["choice", "open"]
Split = Literal["train", "heldout"]
FORMS: tuple[Form, ...] = ("choice", "open")
SPLITS: tuple[Split, ...] = ("train", "heldout")
HELDOUT_SHARE = 5  # one parameter tuple in five is held out


@dataclass(frozen=True)
class Ask:
    """What a question asks of the tool's result: `rule` says how a value is read
    (final, max_abs, range, trend, value), `path` where (a key path into AWL's JSON, or
    the result field), `options` how AWL draws its options for it."""

    rule: str
    path: tuple[str, ...]
    options: str  # number | interval | range | trend | trend_quali | trend_either
    quantity: str  # words for the solving process ("the final x-position of the ball")
    unit: str = ""
    digits: int | None = 2  # rule "value": the reference's rounding (0: an integer)


@dataclass(frozen=True)
class Draft:
    domain: str
    template: str  # "<family>/<variant>/<ask>", listed in the card
    question: str  # without options
    tool: str
    arguments: dict[str, Any]  # as the question states them (AWL's argument names)
    ask: Ask
    scenario: dict[str, Any] = field(default_factory=dict)  # the part a test item could share


@dataclass(frozen=True)
class Problem:
    """A generated question with its reference, as the teacher and the evaluation see it."""

    id: str
    domain: str  # the served domain: mechanics, pde, climate, epidemiology, math
    template: str
    form: Form
    split: Split
    seed: int
    question: str
    options: list[str] | None  # as served: text
    reference: str  # the letter (choice) or the value (open)
    answer_type: str  # choice | number
    tool: str
    arguments: dict[str, Any]
    value: Any  # what the tool gives for the asked quantity
    ask: Ask | None = None
    raw_options: list[Any] | None = None  # AWL's option values (numbers stay numbers)
    scenario: dict[str, Any] = field(default_factory=dict)

    def item(self) -> dict[str, Any]:
        """The problem as an evaluation JSONL row (evaluation/datasets.py reads
        problem, answer, options, answer_type) with what made it."""
        row: dict[str, Any] = {
            "id": self.id,
            "problem": self.question,
            "answer": self.reference,
            "answer_type": self.answer_type,
            "domain": self.domain,
            "template": self.template,
            "form": self.form,
            "split": self.split,
            "seed": self.seed,
            "tool": self.tool,
            "arguments": self.arguments,
        }
        if self.options is not None:
            row["options"] = self.options
        return row

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def canonical(value: Any) -> str:
    """One text per parameter tuple: integral floats as integers, keys sorted."""

    def norm(v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in sorted(v.items())}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, ensure_ascii=False)


def split_of(template_family: str, scenario: dict[str, Any]) -> Split:
    """The side of the fixed partition a parameter tuple lies on."""
    digest = hashlib.sha256(f"{template_family}|{canonical(scenario)}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") % HELDOUT_SHARE == 0 else "train"


def problem_rng(domain: str, split: Split, seed: int, index: int) -> random.Random:
    """The rng of one problem: the same problem for the same (domain, split, seed,
    index), whatever was drawn before it."""
    return random.Random(f"sciserve-teacher:{domain}:{split}:{seed}:{index}")


def r2(value: float) -> float:
    """AWL's parameter rounding: round(random.uniform(lo, hi), 2)."""
    return round(value, 2)


def uniform2(rng: random.Random, low: float, high: float) -> float:
    return r2(rng.uniform(low, high))


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


Reader = Callable[[dict[str, Any]], Any]
