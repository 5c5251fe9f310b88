"""When a vote may stop generating: the stop rules of `strategy.stop`, read each time a
sample finishes (Early-Stopping Self-Consistency, Li et al. ICLR 2024;
Adaptive-Consistency, Aggarwal et al. 2023).

Both rules look only at the answers of the finished samples and the number still to
come; they never look at partial outputs.

- `settled` is lossless: it stops only when no answers the unfinished samples could
  give would change what `select.elect` picks, so the answer equals the full vote's
  (with the same seeds, the finished samples are the same samples).
- `confidence` stops when the posterior probability that the leader now is the full
  vote's winner reaches the threshold: a Dirichlet over the answer groups seen, plus
  one group for an answer not seen yet, with a uniform prior; the unfinished samples
  are drawn from it (Monte Carlo, a fixed seed so a decision replays).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from contract.schemas import ConfidenceStop, StopRule
from workers.strategies.select import Same, elect, grouping

# Monte Carlo draws of the confidence rule: its estimate's standard error at p = 0.95
# is under 0.005.
CONFIDENCE_DRAWS = 2000


def default_window(samples: int) -> int:
    """The smallest majority of K: that many agreeing samples settle a vote alone, so
    no fewer in flight can stop it at its earliest."""
    return samples // 2 + 1


def settled(
    answers: Sequence[str | None],
    unfinished: int,
    *,
    greedy_answered: bool,
    ties_to_greedy: bool,
    same: Same | None = None,
) -> bool:
    """No answers of the `unfinished` samples can change the winner of the finished
    ones' vote (`answers`, the greedy sample first when it has finished).

    The worst case for the leader L (count c) is every unfinished sample joining one
    rival X (count x, or a new answer with 0). L stays the winner if x + r < c and
    c >= 2 (a unique leader two samples agree on wins, `elect`), or if x + r <= c
    when a tie goes to the greedy sample and the greedy sample is in L.
    """
    if unfinished == 0:
        return True
    finished = [a for a in answers if a is not None]
    if not finished:
        return False
    keys = grouping(answers, same)
    counts: dict[str, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    leader = max(counts, key=lambda k: counts[k])
    lead = counts[leader]
    rival = max((n for k, n in counts.items() if k != leader), default=0)
    if rival + unfinished < lead and lead >= 2:
        return True
    greedy_key = keys[0] if greedy_answered else None
    return ties_to_greedy and greedy_key == leader and rival + unfinished <= lead


def confident(
    answers: Sequence[str | None],
    unfinished: int,
    rule: ConfidenceStop,
    *,
    greedy_answered: bool,
    same: Same | None = None,
) -> bool:
    """The probability that the full vote elects the answer that leads now is at least
    `rule.confidence` (see the module docstring)."""
    if unfinished == 0:
        return True
    keys = grouping(answers, same)
    groups = list(dict.fromkeys(k for k in keys if k is not None))
    if not groups:
        return False
    now = elect(list(answers), 0 if greedy_answered else None, same)
    if now.index is None:
        return False  # a tie left to a judge: nothing leads
    leader = keys[now.index]
    counts = np.array([sum(k == g for k in keys) for g in groups] + [0], dtype=float)
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(counts + 1.0, size=CONFIDENCE_DRAWS)
    future = np.array([rng.multinomial(unfinished, p) for p in shares])
    totals = counts + future  # the last column: answers not seen yet, as one group
    wins = 0
    for total in totals:
        top = total.max()
        leaders = np.flatnonzero(total == top)
        if len(leaders) == 1 and top >= 2:
            wins += groups[leaders[0]] == leader if leaders[0] < len(groups) else 0
        elif greedy_answered:
            wins += keys[0] == leader  # a tie or no majority: the greedy answer stands
    return wins / CONFIDENCE_DRAWS >= rule.confidence


def should_stop(
    rule: StopRule,
    answers: Sequence[str | None],
    unfinished: int,
    *,
    greedy_answered: bool,
    ties_to_greedy: bool,
    same: Same | None = None,
) -> bool:
    """`strategy.stop` applied to the finished samples' answers; a settled vote stops
    under either rule."""
    if rule == "none":
        return unfinished == 0
    if settled(answers, unfinished, greedy_answered=greedy_answered,
               ties_to_greedy=ties_to_greedy, same=same):  # fmt: skip
        return True
    if rule == "settled":
        return False
    return confident(answers, unfinished, rule, greedy_answered=greedy_answered, same=same)
