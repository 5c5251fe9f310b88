"""Refine by ART (Ask, Refine, Trust): the Asker poses sub-questions and decides
whether the solution needs refining; only then does the policy refine with them; the
Truster picks the initial or the refined solution.

The prompts are ours (workers/prompts.py, `ART_PROMPT_VERSION`), since ART published
none. Output formats the Asker and Truster must follow:
- Asker: lines `Q: …`, then a last line `Refine: yes` or `Refine: no`. No decision
  line means no refine: an unreadable Asker must not cost refine tokens.
- Truster: `Solution N`. The initial solution is shown first, the refined one second;
  an unreadable verdict keeps the initial solution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.engines.base import GenerationRequest
from workers.metrics import ART_REFINE, TRUSTER_CHOICE
from workers.prompts import asker_prompt, refine_prompt, truster_prompt
from workers.strategies.context import Candidate, SolveContext

MAX_QUESTIONS = 3
_QUESTION = re.compile(r"^\s*(?:[-*\d.)]+\s*)?Q\s*\d*\s*[:.]\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_DECISION = re.compile(r"refine\s*:\s*\**\s*(yes|no)\b", re.IGNORECASE)
_CHOICE = re.compile(r"solution\s*#?\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class AskerVerdict:
    questions: list[str]
    refine: bool
    readable: bool


def parse_asker(text: str) -> AskerVerdict:
    """Sub-questions and the refine decision (the last `Refine:` line wins)."""
    questions = [q.strip() for q in _QUESTION.findall(text)][:MAX_QUESTIONS]
    decisions = _DECISION.findall(text)
    if not decisions:
        return AskerVerdict(questions, refine=False, readable=False)
    return AskerVerdict(questions, refine=decisions[-1].lower() == "yes", readable=True)


def parse_truster(text: str, count: int) -> int | None:
    """The 0-based index of the chosen solution, or None when unreadable."""
    for match in _CHOICE.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= count:
            return number - 1
    stripped = text.strip()
    if stripped[:1].isdigit() and 1 <= int(stripped[0]) <= count:
        return int(stripped[0]) - 1
    return None


async def truster_pick(ctx: SolveContext, solution_sets: list[list[str]]) -> list[int | None]:
    """One batched Truster call: for each set of solutions, the index it trusts."""
    role = ctx.role("truster")
    requests = [
        GenerationRequest(
            messages=[{"role": "user", "content": truster_prompt(ctx.question, solutions)}],
            role=role,
            sampling=ctx.sampling(1, greedy=True),
        )
        for solutions in solution_sets
    ]
    completions = await ctx.generate(requests)
    return [
        parse_truster(completion.texts[0], len(solutions))
        for completion, solutions in zip(completions, solution_sets, strict=True)
    ]


class AskRefineTrust:
    """Three trace events: `art_ask` (asker), `art_refine` (policy; absent when the
    Asker refines nothing) and `art_trust` (truster)."""

    name = "art"

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        verdicts = await self._ask(ctx, candidates)
        chosen = [index for index, verdict in enumerate(verdicts) if verdict.refine]
        if not chosen:
            return candidates
        refined = await self._refine(ctx, candidates, verdicts, chosen)
        return await self._trust(ctx, candidates, refined, chosen)

    async def _ask(self, ctx: SolveContext, candidates: list[Candidate]) -> list[AskerVerdict]:
        role = ctx.role("asker")
        async with ctx.stage("art_ask", role) as detail:
            completions = await ctx.generate(
                [
                    GenerationRequest(
                        messages=[{"role": "user", "content": asker_prompt(ctx.question, c.text)}],
                        role=role,
                        sampling=ctx.sampling(1, greedy=True),
                    )
                    for c in candidates
                ]
            )
            verdicts = [parse_asker(completion.texts[0]) for completion in completions]
            for verdict in verdicts:
                ART_REFINE.labels(decision="refine" if verdict.refine else "skip").inc()
            detail.update(
                decisions=["refine" if v.refine else "skip" for v in verdicts],
                readable=[v.readable for v in verdicts],
                questions=[v.questions for v in verdicts],
            )
        return verdicts

    async def _refine(
        self,
        ctx: SolveContext,
        candidates: list[Candidate],
        verdicts: list[AskerVerdict],
        chosen: list[int],
    ) -> dict[int, Candidate]:
        role = ctx.role("policy")
        async with ctx.stage("art_refine", role) as detail:
            requests = [
                GenerationRequest(
                    messages=candidates[i].continued(refine_prompt(verdicts[i].questions)),
                    role=role,
                    sampling=ctx.sampling(1, greedy=True),
                )
                for i in chosen
            ]
            completions = await ctx.generate(requests)
            refined = {
                i: ctx.revise(candidates[i], list(request.messages or []), completion.texts[0])
                for i, request, completion in zip(chosen, requests, completions, strict=True)
            }
            detail.update(
                refined=chosen,
                answers_before=[candidates[i].answer for i in chosen],
                answers_after=[refined[i].answer for i in chosen],
            )
        return refined

    async def _trust(
        self,
        ctx: SolveContext,
        candidates: list[Candidate],
        refined: dict[int, Candidate],
        chosen: list[int],
    ) -> list[Candidate]:
        async with ctx.stage("art_trust", ctx.role("truster")) as detail:
            picks = await truster_pick(ctx, [[candidates[i].text, refined[i].text] for i in chosen])
            choices = []
            result = list(candidates)
            for i, pick in zip(chosen, picks, strict=True):
                choice = "refined" if pick == 1 else "initial"
                TRUSTER_CHOICE.labels(choice=choice).inc()
                choices.append(choice)
                if choice == "refined":
                    result[i] = refined[i]
            detail.update(
                choices=choices,
                readable=[pick is not None for pick in picks],
                correct_initial=[ctx.correct(candidates[i].answer) for i in chosen],
                correct_refined=[ctx.correct(refined[i].answer) for i in chosen],
            )
        return result
