"""How sure the model was of an output, from its tokens' log probabilities: what
`strategy: auto` reads the greedy answer's confidence from before deciding to vote.

Three measures of one output, all log probabilities (≤ 0, higher is surer):
- `mean`: the mean over every token (the classic sequence confidence);
- `lowest_group`: the lowest mean over any window of `GROUP` consecutive tokens
  (DeepConf, Fu et al. 2025: a reasoning trace that loses its footing anywhere is
  less reliable than its average says);
- `tail`: the mean over the last `GROUP` tokens, where the answer is stated (DeepConf's
  tail confidence).

DeepConf's token confidence averages the top-k candidates' log probabilities; engines
here return the sampled token's own, which orders outputs the same way for greedy
decoding (the sampled token is the top one).

An `AutoPolicy` (fitted by `sciserve calibrate`, loaded from SCISERVE_AUTO_POLICY) names
the measure and its threshold: at or above it the greedy answer is returned alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Measure = Literal["mean", "lowest_group", "tail"]
MEASURES: tuple[Measure, ...] = ("mean", "lowest_group", "tail")
GROUP = 32
# Policies fitted for the demo models, by name (`sciserve calibrate` wrote them).
SHIPPED_POLICIES = Path(__file__).with_name("auto_policies")


def confidences(logprobs: Sequence[float]) -> dict[Measure, float | None]:
    """Every measure of one output (None for an output without tokens)."""
    if not logprobs:
        return {measure: None for measure in MEASURES}
    values = list(logprobs)
    window = min(GROUP, len(values))
    sums = [sum(values[:window])]
    for end in range(window, len(values)):
        sums.append(sums[-1] + values[end] - values[end - window])
    return {
        "mean": sum(values) / len(values),
        "lowest_group": min(sums) / window,
        "tail": sum(values[-window:]) / window,
    }


@dataclass(frozen=True)
class AutoPolicy:
    """When `auto` trusts the greedy answer: `measure` at or above `threshold`. The rest
    of the file (the fitted curve, the data it came from) is kept for people."""

    measure: Measure = "lowest_group"
    threshold: float = math.inf  # never confident enough: always vote (no file found)
    source: str = "built-in (always escalates)"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def confident(self, logprobs: Sequence[float] | None) -> tuple[bool, float | None]:
        """Whether an output is sure enough to stand alone, and its measure."""
        if not logprobs:
            return False, None
        value = confidences(logprobs)[self.measure]
        return self.passes(value), value

    def passes(self, value: float | None) -> bool:
        """Whether a measured confidence (this policy's measure) is at the threshold."""
        return value is not None and value >= self.threshold

    @classmethod
    def load(cls, path: Path | None, demo_model: str | None = None) -> AutoPolicy:
        """The policy in `path`, else the one shipped for the demo model being served
        (`demo_model`; None when serving another model), else the built-in one (always
        escalate): a threshold fitted on one model means nothing for another."""
        shipped = SHIPPED_POLICIES / f"{demo_model}.json" if demo_model else None
        for candidate in (path, shipped):
            if candidate is not None and candidate.exists():
                data = json.loads(candidate.read_text())
                return cls(
                    measure=data["measure"],
                    threshold=float(data["threshold"]),
                    source=str(candidate),
                    extra=data,
                )
        return cls()
