"""Multiple-choice options drawn as AWL's generators draw them
(src/utils/make_problem_utils.py of Rose-STL-Lab/Adapting-While-Learning), from a seeded
`random.Random` so a set is the same for the same seed.

- `number_choice`: the value among three distractors within ±min(|v|, 1), at least
  max(one unit of its last decimal, 10% of |v|) apart; where no such draw exists
  (|v| > 10) the distractors are v ± k·gap.
- `interval_choices`: four adjacent "[lo, hi)" intervals cutting a span around the
  value, none of the cuts within 5% of the span of it.
- `range_choices`: the true "[min, max]" and three neighbours of the same width.
- `trend_choices`: AWL's quantitative label ("Steady decrease by 43.6%") against
  "Stable", "Fluctuating, overall stable" and random-percentage labels; `quali=True`
  is the rolling-ball set's qualitative one ("Steady Significant decrease").

Each returns (options, correct letter).
"""

from __future__ import annotations

import itertools
import random

from contract.awl_questions import LETTERS, awl_trend, awl_trend_quali

Options = tuple[list[float | str], str]

# AWL's qualitative labels (generate_trend_quali), lower case after the prefix.
QUALI_LABELS = (
    "Stable",
    "Fluctuating, overall stable",
    "Steady slight increase",
    "Steady slight decrease",
    "Steady moderate increase",
    "Steady moderate decrease",
    "Steady significant increase",
    "Steady significant decrease",
    "Fluctuating, slight increase",
    "Fluctuating, slight decrease",
    "Fluctuating, moderate increase",
    "Fluctuating, moderate decrease",
    "Fluctuating, significant increase",
    "Fluctuating, significant decrease",
)


def _decimals(value: float) -> int:
    """Decimal places as AWL counts them: the digits after the point of str(value)."""
    return len(str(value).split(".")[-1])


def number_choice(rng: random.Random, correct: float) -> Options:
    position = rng.randint(0, 3)
    options: list[float | None] = [None] * 4
    options[position] = correct
    spread = min(abs(correct), 1)
    if isinstance(correct, int):
        gap: float = max(1, int(0.1 * abs(correct)))
    else:
        places = _decimals(correct)
        gap = max(10**-places, 0.1 * abs(correct))
    for i in range(4):
        if i == position:
            continue
        for _ in range(100):
            drawn = correct + rng.uniform(-spread, spread)
            candidate = round(drawn) if isinstance(correct, int) else round(drawn, places)
            if (
                candidate not in options
                and candidate != correct
                and all(abs(candidate - o) >= gap for o in options if o is not None)
            ):
                options[i] = candidate
                break
        else:
            options[i] = correct + (i - position) * gap
    return [o for o in options if o is not None], LETTERS[position]


def interval_choices(rng: random.Random, correct: float) -> Options:
    span = abs(correct) + 5
    low = correct - span * rng.uniform(0.5, 1)
    high = correct + span * rng.uniform(0.5, 1)
    cuts = [low, high]
    while len(cuts) < 5:
        cut = rng.uniform(low, high)
        if abs(cut - correct) > span * 0.05:
            cuts.append(cut)
    cuts.sort()
    intervals = list(itertools.pairwise(cuts))
    index = next(i for i, (a, b) in enumerate(intervals) if a < correct < b)
    return [f"[{a}, {b})" for a, b in intervals], LETTERS[index]


def range_choices(rng: random.Random, low: float, high: float) -> Options:
    width = high - low
    position = rng.randint(0, 3)
    options: list[float | str] = []
    for i in range(4):
        if i == position:
            options.append(f"[{low}, {high}]")
            continue
        start = low - (position - i) * width if i < position else high + (i - position - 1) * width
        options.append(f"[{start}, {start + width}]")
    return options, LETTERS[position]


def trend_choices(rng: random.Random, numbers: list[float], *, quali: bool = False) -> Options:
    if quali:
        return _quali_choices(rng, numbers)
    label = awl_trend(numbers)
    change = (numbers[-1] - numbers[0]) / numbers[0] * 100
    top = max(abs(change) * 2, 5)
    distractors = [
        "Stable",
        "Fluctuating, overall stable",
        f"Steady increase by {rng.uniform(0.1, top):.1f}%",
        f"Steady decrease by {rng.uniform(0.1, top):.1f}%",
        f"Fluctuating, increase by {rng.uniform(0.1, top):.1f}%",
        f"Fluctuating, decrease by {rng.uniform(0.1, top):.1f}%",
    ]
    choices: list[float | str] = [label]
    while len(choices) < 4:
        pick = rng.choice(distractors)
        if pick not in choices:
            choices.append(pick)
    rng.shuffle(choices)
    return choices, LETTERS[choices.index(label)]


def _quali_choices(rng: random.Random, numbers: list[float]) -> Options:
    label = awl_trend_quali(numbers)
    # AWL's capitalised label ("Steady Significant decrease") is missing from its own
    # lower-case list, so it is added, and its lower-case twin could be drawn beside it
    # (a question whose right and wrong options differ only in case). The twin is left
    # out here; everything else is drawn as AWL draws it.
    pool = [o for o in QUALI_LABELS if o.lower() != label.lower()]
    rng.shuffle(pool)
    choices: list[float | str] = [label, *rng.sample(pool, 3)]
    rng.shuffle(choices)
    return choices, LETTERS[choices.index(label)]
