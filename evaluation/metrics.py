"""The metric formulas of DESIGN §4, as pure functions of per-question outcomes.

- Answer accuracy: the share of questions whose final answer is right.
- TUA (AWL): a question is Easy if the model answers it right with no tools, Hard
  otherwise; T/N is whether the adaptive run used a tool.
  TUA = ½·N_E/(N_E+T_E) + ½·T_H/(T_H+N_H). When one class is empty its half is
  undefined, and TUA is the other half alone (the counts are reported with it).
- SCoRe: Acc@t1, Acc@t2, Δ = Acc@t2 - Acc@t1, Δi→c (share wrong at t1 and right at
  t2), Δc→i (share right at t1 and wrong at t2); Δ = Δi→c - Δc→i.
- ART: refine rate = candidates the Asker sent to refine / candidates asked. Truster
  win rate = among Truster choices where the initial and refined answers differ in
  correctness, the share where it chose the correct one. Truster first rate = among
  readable verdicts, the share that picked the solution shown first (the order is
  random, so an unbiased Truster is near 0.5); position bias = first rate - 0.5.
- Two arms on the same questions (base vs trained adapter): each metric's difference
  with a paired bootstrap 95% interval, resampling questions with replacement.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class ToolTable:
    """AWL's 2x2 table: Easy/Hard by Tool/No tool."""

    n_easy: int
    t_easy: int
    t_hard: int
    n_hard: int

    @classmethod
    def count(cls, easy: Sequence[bool], used_tool: Sequence[bool]) -> ToolTable:
        pairs = list(zip(easy, used_tool, strict=True))
        return cls(
            n_easy=sum(e and not t for e, t in pairs),
            t_easy=sum(e and t for e, t in pairs),
            t_hard=sum(not e and t for e, t in pairs),
            n_hard=sum(not e and not t for e, t in pairs),
        )

    @property
    def tua(self) -> float | None:
        halves = []
        if self.n_easy + self.t_easy:
            halves.append(self.n_easy / (self.n_easy + self.t_easy))
        if self.t_hard + self.n_hard:
            halves.append(self.t_hard / (self.t_hard + self.n_hard))
        return sum(halves) / len(halves) if halves else None


@dataclass(frozen=True)
class ScoreDeltas:
    acc_t1: float
    acc_t2: float
    delta: float
    delta_i2c: float
    delta_c2i: float

    @classmethod
    def of(cls, t1: Sequence[bool], t2: Sequence[bool]) -> ScoreDeltas:
        if len(t1) != len(t2) or not t1:
            raise ValueError("Acc@t1 and Acc@t2 need the same, non-empty set of questions.")
        n = len(t1)
        acc_t1, acc_t2 = sum(t1) / n, sum(t2) / n
        return cls(
            acc_t1=acc_t1,
            acc_t2=acc_t2,
            delta=acc_t2 - acc_t1,
            delta_i2c=sum(not a and b for a, b in zip(t1, t2, strict=True)) / n,
            delta_c2i=sum(a and not b for a, b in zip(t1, t2, strict=True)) / n,
        )


def art_refine_rate(decisions: Sequence[str]) -> float | None:
    """`decisions` are the Asker's per candidate: "refine" or "skip"."""
    return mean([1.0 if d == "refine" else 0.0 for d in decisions])


def truster_win_rate(
    choices: Sequence[str], initial_correct: Sequence[bool], refined_correct: Sequence[bool]
) -> float | None:
    """Only choices that matter count: initial and refined differ in correctness."""
    wins = [
        (choice == "refined") == refined
        for choice, initial, refined in zip(choices, initial_correct, refined_correct, strict=True)
        if initial != refined
    ]
    return mean([1.0 if w else 0.0 for w in wins])


def truster_readable_rate(positions: Sequence[int | None]) -> float | None:
    """Share of Truster verdicts that could be read. An unreadable verdict keeps the
    initial solution, so without this rate a Truster that never answers looks as if it
    always trusted the initial one."""
    return mean([0.0 if p is None else 1.0 for p in positions])


def truster_first_rate(positions: Sequence[int | None]) -> float | None:
    """`positions` are the 1-based positions picked (None: unreadable, not counted)."""
    return mean([1.0 if p == 1 else 0.0 for p in positions if p is not None])


Metrics = Callable[[Sequence[str]], dict[str, float | None]]


def paired_bootstrap(
    ids: Sequence[str],
    first: Metrics,
    second: Metrics,
    labels: tuple[str, str] = ("first", "second"),
    samples: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """Per metric: both arms' values, `diff` (second - first) and its 95% interval from
    `samples` resamples of the question ids, the same draw for both arms (paired). A
    draw where a metric is undefined for an arm (TUA with an empty class) is skipped."""
    rng = random.Random(seed)
    point_first, point_second = first(ids), second(ids)
    diffs: dict[str, list[float]] = {name: [] for name in point_first}
    for _ in range(samples):
        draw = [rng.choice(ids) for _ in ids]
        a, b = first(draw), second(draw)
        for name, values in diffs.items():
            left, right = a.get(name), b.get(name)
            if left is not None and right is not None:
                values.append(right - left)
    report: dict[str, dict[str, float | None]] = {}
    for name, values in diffs.items():
        values.sort()
        before, after = point_first[name], point_second.get(name)
        report[name] = {
            labels[0]: before,
            labels[1]: after,
            "diff": None if before is None or after is None else after - before,
            "ci95_low": values[int(0.025 * len(values))] if values else None,
            "ci95_high": values[min(len(values) - 1, int(0.975 * len(values)))] if values else None,
        }
    return report
