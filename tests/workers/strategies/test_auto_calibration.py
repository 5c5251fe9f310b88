# mypy: disable-error-code="index, union-attr, misc, arg-type, operator"
"""The offline replay and the auto policy's fit (entrypoints/calibrate.py) on synthetic
recordings: a settled replay answers as the full vote on any recording, early stops
spend fewer tokens, and the fitted threshold is the cheapest within the tolerance."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from entrypoints.calibrate import fit, policy_outcome, replay_vote
from workers.strategies.confidence import AutoPolicy, confidences


def same(first: str, second: str) -> bool:
    return first == second


@pytest.mark.parametrize("seed", range(40))
def test_a_settled_replay_answers_as_the_full_vote(seed: int) -> None:
    rng = random.Random(seed)
    samples = rng.choice([3, 5, 8])
    answers = [rng.choice(["1", "2", "3", None]) for _ in range(samples)]
    lengths = [rng.randint(5, 200) for _ in range(samples)]
    full = replay_vote(answers, lengths, "none", samples, same)
    for window in (samples, samples // 2 + 1, 1):
        settled = replay_vote(answers, lengths, "settled", window, same)
        assert settled.answer == full.answer
        assert settled.tokens <= full.tokens == sum(lengths)


def test_agreeing_samples_stop_early() -> None:
    full = replay_vote(["4"] * 8, [100] * 8, "none", 8, same)
    early = replay_vote(["4"] * 8, [100] * 8, "settled", 5, same)
    assert (full.used, early.used) == (8, 5) and early.tokens == 500


def _row(index: int, confidence: float, greedy: str, votes: list[str]) -> dict[str, Any]:
    return {
        "id": f"q{index}",
        "reference": "4",
        "answer_type": "number",
        "answers": [greedy, *votes],
        "generated_tokens": [100] * (1 + len(votes)),
        "confidences": {"mean": confidence, "lowest_group": confidence, "tail": confidence},
    }


def test_the_fit_trusts_the_greedy_answer_where_it_is_right() -> None:
    # Confident questions: the greedy answer is right. Unsure ones: only the vote is.
    rows = [_row(i, -0.05, "4", ["4"] * 4) for i in range(10)]
    rows += [_row(10 + i, -1.0, "7", ["4", "4", "4", "9"]) for i in range(10)]
    policy = fit(rows, samples=5)
    assert policy["measure"] in ("mean", "lowest_group", "tail")
    assert -1.0 < policy["threshold"] <= -0.05
    fitted = policy["fitted"]
    assert fitted["accuracy"] == fitted["always_vote_accuracy"] == 1.0
    assert fitted["tokens_per_question"] < fitted["always_vote_tokens_per_question"]
    assert fitted["greedy_share"] == 0.5
    right, tokens = policy_outcome(rows[0], True, 5)
    assert right and tokens == 100


def test_confidence_measures_and_the_built_in_policy() -> None:
    values = [-0.1] * 40 + [-2.0] * 8
    measured = confidences(values)
    assert measured["mean"] == pytest.approx((40 * -0.1 + 8 * -2.0) / 48)
    assert measured["tail"] < measured["mean"] and measured["lowest_group"] == measured["tail"]
    never = AutoPolicy.load(None, None)
    assert never.threshold == math.inf and never.confident([0.0, 0.0]) == (False, 0.0)
