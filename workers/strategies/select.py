"""Select: one answer from K candidates, by majority vote over normalized answers,
with ties broken by the Truster (when ART is on) or by the earliest candidate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from workers.strategies.art import truster_pick
from workers.strategies.context import Candidate, SolveContext


def majority(answers: Sequence[str | None]) -> tuple[list[str], Counter[str]]:
    """The most common answers (ties in order of first appearance) and the counts.
    No answer (`None`) gets no vote; it wins nothing."""
    votes = Counter(answer for answer in answers if answer is not None)
    if not votes:
        return [], votes
    top = max(votes.values())
    leaders = [
        answer
        for answer in dict.fromkeys(a for a in answers if a is not None)
        if votes[answer] == top
    ]
    return leaders, votes


class Select:
    """`samples == 1` passes the single candidate through; otherwise a vote."""

    name = "select"

    def __init__(self, truster_breaks_ties: bool):
        self.truster_breaks_ties = truster_breaks_ties

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        if len(candidates) == 1:
            return candidates
        role = ctx.role("truster") if self.truster_breaks_ties else None
        async with ctx.stage(self.name, role) as detail:
            leaders, votes = majority([c.answer for c in candidates])
            method = "vote"
            if not leaders:
                winner, method = candidates[0], "first"
            elif len(leaders) > 1 and self.truster_breaks_ties:
                representatives = [next(c for c in candidates if c.answer == a) for a in leaders]
                [pick] = await truster_pick(ctx, [[c.text for c in representatives]])
                winner, method = representatives[pick or 0], "truster"
            else:
                winner = next(c for c in candidates if c.answer == leaders[0])
            detail.update(
                method=method,
                votes=dict(votes),
                tied=leaders if len(leaders) > 1 else [],
                answer=winner.answer,
            )
        return [winner]
