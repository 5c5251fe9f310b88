"""The reference of a generated question: the asked quantity read from the tool's
result (`read_value`), written as AWL's options and letter or as the value itself
(`settle`)."""

from __future__ import annotations

import random
from typing import Any

from entrypoints.teacher.options import (
    interval_choices,
    number_choice,
    range_choices,
    trend_choices,
)
from entrypoints.teacher.problems import Ask, Draft, Form, Problem, Split, finite

# AWL's PDE values run away where its solver's stability fix fails (notes: 7 of its 120
# test answers are blow-ups near 1e278); such a number teaches nothing about diffusion
# and AWL's distractors cannot be drawn around it.
LARGEST_VALUE = 1e6
SINGLE_VALUE_OPTIONS = ("number", "interval", "number_or_interval")


def read_value(ask: Ask, result: dict[str, Any]) -> Any:
    """The asked quantity: a number, a [min, max] pair, or the series of a trend;
    None where the result does not hold it."""
    node: Any = result
    for key in ask.path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if ask.rule == "value":
        if not finite(node):
            return None
        value = float(node)
        return round(value) if ask.digits == 0 else round(value, ask.digits)
    if not isinstance(node, list) or not node:
        return None
    numbers = [float(v) for v in node]
    if ask.rule == "final":
        return numbers[-1]
    if ask.rule == "max_abs":
        return max(abs(v) for v in numbers)
    if ask.rule == "range":
        return [min(numbers), max(numbers)]
    if ask.rule == "trend":
        return numbers
    raise ValueError(f"unknown rule {ask.rule!r}")


def form_of(draft: Draft, rng: random.Random, wanted: str) -> Form:
    """`choice` or `open` (`mixed`: either, by the problem's rng). Only a single value
    has an open form; ranges and trends are asked with options only."""
    single = draft.ask.options in SINGLE_VALUE_OPTIONS
    if wanted == "choice" or not single:
        return "choice"
    if wanted == "open":
        return "open"
    return "open" if rng.random() < 0.5 else "choice"


def settle(
    draft: Draft,
    result: dict[str, Any],
    rng: random.Random,
    form: Form,
    *,
    problem_id: str,
    split: Split,
    seed: int,
) -> Problem | None:
    """The problem, or None where the result cannot make one AWL's way (no value, a
    blow-up, a trend from zero, a range of zero width: AWL's options would repeat)."""
    value = read_value(draft.ask, result)
    if value is None:
        return None
    kind = draft.ask.options
    if draft.domain == "pde" and abs(value) > LARGEST_VALUE:
        return None
    raw: list[Any] | None = None
    if form == "open":
        if kind not in SINGLE_VALUE_OPTIONS:
            return None
        reference, answer_type, shown = str(value), "number", value
    else:
        if kind == "number_or_interval":  # AWL's PDE: number or interval, one in two
            kind = rng.choice(["number", "interval"])
        if kind == "number":
            raw, reference = number_choice(rng, value)
            shown = value
        elif kind == "interval":
            raw, reference = interval_choices(rng, value)
            shown = value
        elif kind == "range":
            low, high = value
            if low == high:
                return None
            raw, reference = range_choices(rng, low, high)
            shown = [low, high]
        else:  # trend, trend_quali, trend_either
            if value[0] == 0:
                return None  # AWL asks a trend only of a series that does not start at 0
            quali = kind == "trend_quali" or (kind == "trend_either" and rng.random() < 0.5)
            raw, reference = trend_choices(rng, value, quali=quali)
            shown = raw["ABCD".index(reference)]
        answer_type = "choice"
        if len({str(o) for o in raw}) < len(raw):
            return None  # options a reader cannot tell apart
    return Problem(
        id=problem_id,
        domain=draft.domain,
        template=draft.template,
        form=form,
        split=split,
        seed=seed,
        question=draft.question,
        options=[str(o) for o in raw] if raw is not None else None,
        reference=reference,
        answer_type=answer_type,
        tool=draft.tool,
        arguments=draft.arguments,
        value=shown,
        ask=draft.ask,
        raw_options=raw,
        scenario=draft.scenario,
    )
