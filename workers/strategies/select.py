"""Select: one answer from K candidates, by majority vote over normalized answers.

Voting must never be a step down from one greedy answer, so one of the K candidates
is the greedy one (generate.py) and it decides whenever the vote does not: a tie, or
no answer that at least two candidates agree on. With ART the Truster breaks ties
instead. Equivalent answers are one vote (math-verify for expressions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contract.answers import equivalent
from workers.strategies.art import truster_pick
from workers.strategies.context import BudgetSpent, Candidate, SolveContext

Same = Callable[[str, str], bool]


def majority(
    answers: Sequence[str | None], same: Same | None = None
) -> tuple[list[str], Counter[str]]:
    """The most common answers (ties in order of first appearance) and the counts.
    An answer joins the group of the first earlier answer it is `same` as (equality
    without `same`), and counts under that answer. No answer (`None`) gets no vote."""
    groups = grouping(answers, same)
    votes = Counter(key for key in groups if key is not None)
    if not votes:
        return [], votes
    top = max(votes.values())
    leaders = [
        key for key in dict.fromkeys(k for k in groups if k is not None) if votes[key] == top
    ]
    return leaders, votes


def grouping(answers: Sequence[str | None], same: Same | None = None) -> list[str | None]:
    """For each answer, the first earlier answer of its group (itself if first)."""
    keys: list[str | None] = []
    representatives: list[str] = []
    for answer in answers:
        if answer is None:
            keys.append(None)
            continue
        key = next(
            (r for r in representatives if r == answer or (same is not None and same(r, answer))),
            None,
        )
        if key is None:
            representatives.append(answer)
            key = answer
        keys.append(key)
    return keys


@dataclass(frozen=True)
class Election:
    """The vote's outcome: the winning candidate's index (None: a tie left to the
    caller), how it was decided, the tied leaders and the counts."""

    index: int | None
    method: str
    leaders: list[str]
    votes: Counter[str]
    keys: list[str | None]


def elect(answers: Sequence[str | None], greedy: int | None, same: Same | None = None) -> Election:
    """A unique leader that at least two candidates agree on wins; otherwise the
    greedy candidate (`greedy`, when it has an answer); otherwise a tie stays open
    (index None) for a judge, and with no answer at all the greedy or first one."""
    leaders, votes = majority(answers, same)
    keys = grouping(answers, same)
    if len(leaders) == 1 and votes[leaders[0]] >= 2:
        members = [i for i, key in enumerate(keys) if key == leaders[0]]
        index = greedy if greedy in members else members[0]
        return Election(index, "vote", leaders, votes, keys)
    if greedy is not None and answers[greedy] is not None:
        return Election(greedy, "greedy", leaders, votes, keys)
    if len(leaders) > 1:
        return Election(None, "tie", leaders, votes, keys)
    if leaders:  # one answer, one vote, and the greedy candidate has none
        return Election(keys.index(leaders[0]), "vote", leaders, votes, keys)
    return Election(greedy if greedy is not None else 0, "first", leaders, votes, keys)


class Select:
    """`samples == 1` passes the single candidate through; otherwise a vote over the
    samples that finished (sample_race.py may have stopped the rest)."""

    name = "select"

    def __init__(self, truster_breaks_ties: bool):
        self.truster_breaks_ties = truster_breaks_ties

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        if ctx.request.strategy.vote_size == 1:
            return candidates
        role = ctx.role("truster") if self.truster_breaks_ties else None
        async with ctx.stage(self.name, role) as detail:
            answers = [c.answer for c in candidates]
            greedy = next((i for i, c in enumerate(candidates) if c.greedy), None)

            def same(first: str, second: str) -> bool:
                return equivalent(first, second, ctx.answer_type)

            election = elect(answers, greedy, same)
            tied = election.leaders if len(election.leaders) > 1 else []
            index, method = election.index, election.method
            if tied and self.truster_breaks_ties and method != "vote":
                # ART: the Truster judges a tie, ahead of the greedy fallback.
                heads = [election.keys.index(leader) for leader in tied]
                try:
                    [verdict] = await truster_pick(ctx, [[candidates[i].text for i in heads]])
                except BudgetSpent:  # no budget left for the judge: the fallback decides
                    detail["truster"] = {"skipped": "budget_tokens spent"}
                else:
                    index, method = heads[verdict.index or 0], "truster"
                    detail["truster"] = verdict.detail()
            winner = candidates[index if index is not None else 0]
            if index is None:
                method = "first"
            detail.update(
                method=method,
                votes=dict(election.votes),
                tied=tied,
                greedy_answer=answers[greedy] if greedy is not None else None,
                answer=winner.answer,
            )
            if ctx.vote_stop is not None:
                detail["stop"] = ctx.vote_stop
        return [winner]
