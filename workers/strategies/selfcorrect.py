"""Refine by SCoRe self-correction: `attempts - 1` rounds of "correct your solution",
each round one batched engine call over all candidates."""

from __future__ import annotations

from workers.engines.base import GenerationRequest
from workers.metrics import SELFCORRECT_FLIPS
from workers.prompts import score_instruction
from workers.strategies.context import BudgetSpent, Candidate, SolveContext

POLICY = "policy"


class SelfCorrect:
    """The policy revises its own last answer; with a reference, every change of
    correctness between consecutive attempts is counted as a flip (i→c or c→i)."""

    name = "selfcorrect"

    def __init__(self, rounds: int):
        self.rounds = rounds

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        role = ctx.role(POLICY)
        instruction = score_instruction(ctx.request.options)
        for round_index in range(self.rounds):
            try:
                revised = await self._round(ctx, candidates, role, instruction, round_index)
            except BudgetSpent:
                if round_index == 0:
                    raise  # nothing revised: the pipeline keeps the candidates it had
                break  # the job's budget_tokens is spent: the last full round stands
            candidates = revised
        return candidates

    async def _round(
        self,
        ctx: SolveContext,
        candidates: list[Candidate],
        role: str | None,
        instruction: str,
        round_index: int,
    ) -> list[Candidate]:
        async with ctx.stage(self.name, role) as detail:
            requests = [
                GenerationRequest(
                    messages=candidate.continued(instruction),
                    role=role,
                    sampling=ctx.sampling(len(candidates), greedy=candidate.greedy),
                )
                for candidate in candidates
            ]
            completions = await ctx.generate(requests)
            revised = [
                ctx.revise(candidate, list(request.messages or []), completion.texts[0])
                for candidate, request, completion in zip(
                    candidates, requests, completions, strict=True
                )
            ]
            flips = count_flips(ctx, candidates, revised)
            detail.update(
                round=round_index + 1,
                answers_before=[c.answer for c in candidates],
                answers_after=[c.answer for c in revised],
                flips=flips,
            )
            thoughts = ctx.thoughts_detail(revised)
            if thoughts is not None:
                detail["thoughts"] = thoughts
        return revised


def count_flips(
    ctx: SolveContext, before: list[Candidate], after: list[Candidate]
) -> dict[str, int] | None:
    """i→c and c→i changes between two attempts; None without a reference."""
    if ctx.request.reference is None:
        return None
    flips = {"i_to_c": 0, "c_to_i": 0}
    for old, new in zip(before, after, strict=True):
        was, now = ctx.correct(old.answer), ctx.correct(new.answer)
        if was != now:
            direction = "i_to_c" if now else "c_to_i"
            flips[direction] += 1
            SELFCORRECT_FLIPS.labels(direction=direction).inc()
    return flips
