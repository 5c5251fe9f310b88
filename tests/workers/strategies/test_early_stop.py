"""The vote's stop rules against the vote itself: `settled` must never stop where an
outcome of the unfinished samples could change `elect`'s winner (checked by
enumerating every outcome), and should stop as soon as none can."""

from __future__ import annotations

import itertools
import random

import pytest

from contract.schemas import ConfidenceStop
from workers.strategies.early_stop import confident, default_window, settled, should_stop
from workers.strategies.select import elect

ALPHABET = ["a", "b", "c"]


def _winner(answers: list[str | None], ties_to_greedy: bool) -> str | None:
    election = elect(answers, 0 if ties_to_greedy and answers[0] is not None else None)
    if election.index is None:
        return None  # a tie left to the Truster: not decided by the vote
    return answers[election.index]


@pytest.mark.parametrize("seed", range(200))
def test_settled_never_stops_where_the_rest_could_change_the_winner(seed: int) -> None:
    rng = random.Random(seed)
    k = rng.randint(2, 7)
    outputs: list[str | None] = [rng.choice([*ALPHABET, None]) for _ in range(k)]
    ties_to_greedy = rng.random() < 0.7  # without ART the greedy sample breaks ties
    order = list(range(k))
    rng.shuffle(order)
    order.remove(0)
    order.insert(rng.randint(0, k - 1), 0)
    for done in range(1, k + 1):
        finished_ids = sorted(order[:done])
        answers = [outputs[i] for i in finished_ids]
        greedy_answered = 0 in finished_ids and outputs[0] is not None
        unfinished = k - done
        if not settled(answers, unfinished, greedy_answered=greedy_answered,
                       ties_to_greedy=ties_to_greedy):  # fmt: skip
            continue
        stopped = _winner(answers, ties_to_greedy and 0 in finished_ids)
        rest = [i for i in range(k) if i not in finished_ids]
        for filling in itertools.product([*ALPHABET, "new", None], repeat=len(rest)):
            full = list(outputs)
            for i, answer in zip(rest, filling, strict=True):
                full[i] = answer
            assert _winner(full, ties_to_greedy) == stopped, (outputs, order, done, filling)


def test_settled_stops_at_a_majority_and_waits_on_a_close_race() -> None:
    # 8 samples: 5 agree, 3 to come: decided.
    assert settled(["7"] * 5, 3, greedy_answered=True, ties_to_greedy=True)
    # 4 agree with the greedy one, 4 to come: a 4-4 tie goes to the greedy answer.
    assert settled(["7"] * 4, 4, greedy_answered=True, ties_to_greedy=True)
    # The same with ART (the Truster breaks ties): not decided.
    assert not settled(["7"] * 4, 4, greedy_answered=True, ties_to_greedy=False)
    # 3 vs 1 with 3 to come: not decided.
    assert not settled(["7", "7", "8", "7"], 3, greedy_answered=True, ties_to_greedy=True)
    assert settled(["7"], 0, greedy_answered=True, ties_to_greedy=True)
    assert default_window(8) == 5 and default_window(5) == 3 and default_window(2) == 2


def test_confidence_stops_earlier_than_settled_on_agreement_only() -> None:
    rule = ConfidenceStop(confidence=0.95)
    agree = ["7", "7", "7", "7", "7"]  # 5 of 16, 11 to come
    assert not settled(agree, 11, greedy_answered=True, ties_to_greedy=True)
    assert confident(agree, 11, rule, greedy_answered=True)
    split = ["7", "8", "7", "8"]
    assert not confident(split, 12, rule, greedy_answered=True)
    assert should_stop(rule, agree, 11, greedy_answered=True, ties_to_greedy=True)
    assert not should_stop("none", agree, 11, greedy_answered=True, ties_to_greedy=True)
    assert should_stop("none", agree, 0, greedy_answered=True, ties_to_greedy=True)
