"""Refine by ART (Ask, Refine, Trust): the Asker poses sub-questions and decides
whether the solution needs refining; only then does the policy refine with them; the
Truster picks the initial or the refined solution.

The prompts are ours (workers/prompts.py, `ART_PROMPT_VERSION`), since ART published
none. Output formats the Asker and Truster must follow:
- Asker: lines `Q: …`, then a last line `Refine: yes` or `Refine: no`. No decision
  line means no refine: an unreadable Asker must not cost refine tokens.
- Truster: `Solution N`. The solutions are shown in an order drawn from the job's
  seeded random generator (a fixed order lets a position bias pass for judgement); the
  verdict is read from the whole output (a verdict phrase, else the only solution
  named), and an unreadable verdict keeps the initial solution. The trace records the
  order shown and the position picked, so evaluations measure the position bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contract.role_prompts import truster_prompt
from workers.engines.base import GenerationRequest
from workers.metrics import ART_REFINE, TRUSTER_CHOICE, TRUSTER_UNREADABLE
from workers.prompts import asker_prompt, refine_prompt
from workers.strategies.context import Candidate, SolveContext

MAX_QUESTIONS = 3
_QUESTION = re.compile(r"^\s*(?:[-*\d.)]+\s*)?Q\s*\d*\s*[:.]\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_DECISION = re.compile(r"refine\s*:\s*\**\s*(yes|no)\b", re.IGNORECASE)
_CHOICE = re.compile(r"solution\s*#?\s*(\d+)", re.IGNORECASE)
_VERDICT_WORDS = (
    r"best|correct|right|better|accurate|valid|choose|chose|pick|picked|trust|prefer|select"
    r"|answer|verdict|winner"
)
# "the correct one is Solution 2", "I choose Solution 2", "Answer: Solution 2"
_VERDICT_BEFORE = re.compile(
    rf"\b(?:{_VERDICT_WORDS})\b[^.\n]{{0,40}}?\bsolution\s*#?\s*(\d+)", re.IGNORECASE
)
# "Solution 2 is correct", "Solution 2 is the better one"
_VERDICT_AFTER = re.compile(
    r"\bsolution\s*#?\s*(\d+)\s*(?:is|was|seems|looks|appears)\s+(?:to\s+be\s+)?"
    r"(?:the\s+)?(?:more\s+|most\s+)?(?:correct|right|better|best|accurate|valid)\b",
    re.IGNORECASE,
)
# "Solution 1 is wrong", "Solution 1 is not correct"
_REJECTED = re.compile(
    r"\bsolution\s*#?\s*(\d+)\s*(?:is|was)\s+(?:not\s+correct|incorrect|wrong|flawed|"
    r"not\s+right)",
    re.IGNORECASE,
)


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
    """The 0-based index of the chosen solution, or None when unreadable.

    The whole output is read, not its first "Solution N": the last verdict phrase
    ("Solution 2 is correct", "I choose Solution 2") that does not name a rejected
    solution wins; without one, a single solution named (or a single one left after
    rejections) is the choice; a bare leading digit is accepted; anything else, such
    as two solutions named with no verdict, is unreadable.
    """
    plain = text.replace("*", "")

    def numbers(pattern: re.Pattern[str]) -> list[tuple[int, int]]:
        return [
            (match.start(), int(match.group(1)) - 1)
            for match in pattern.finditer(plain)
            if 1 <= int(match.group(1)) <= count
        ]

    rejected = {index for _, index in numbers(_REJECTED)}
    verdicts = sorted(numbers(_VERDICT_BEFORE) + numbers(_VERDICT_AFTER))
    accepted = [index for _, index in verdicts if index not in rejected]
    if accepted:
        return accepted[-1]
    named = {index for _, index in numbers(_CHOICE)}
    if len(named) == 1 and not rejected:
        return named.pop()
    remaining = set(range(count)) - rejected
    if rejected and len(remaining) == 1:
        return remaining.pop()
    stripped = plain.strip()
    if not named and stripped[:1].isdigit() and 1 <= int(stripped[0]) <= count:
        return int(stripped[0]) - 1
    return None


@dataclass(frozen=True)
class TrusterVerdict:
    """One Truster call: the chosen solution as an index into what the caller gave
    (None: unreadable), the order the solutions were shown in (indices into the
    caller's list), and the 1-based position picked in that order."""

    index: int | None
    order: list[int]
    position: int | None

    def detail(self) -> dict[str, object]:
        return {"order": self.order, "position": self.position}


async def truster_pick(ctx: SolveContext, solution_sets: list[list[str]]) -> list[TrusterVerdict]:
    """One batched Truster call: for each set of solutions, shown in a random order
    (the job's seeded generator), the one it trusts."""
    role = ctx.role("truster")
    orders = [ctx.rng.sample(range(len(solutions)), len(solutions)) for solutions in solution_sets]
    requests = [
        GenerationRequest(
            messages=[
                {
                    "role": "user",
                    "content": truster_prompt(ctx.question, [solutions[i] for i in order]),
                }
            ],
            role=role,
            sampling=ctx.sampling(1, greedy=True),
        )
        for solutions, order in zip(solution_sets, orders, strict=True)
    ]
    completions = await ctx.generate(requests)
    verdicts = []
    for completion, order in zip(completions, orders, strict=True):
        shown = parse_truster(completion.texts[0], len(order))
        verdicts.append(
            TrusterVerdict(
                None if shown is None else order[shown], order, None if shown is None else shown + 1
            )
        )
    return verdicts


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
            verdicts = await truster_pick(
                ctx, [[candidates[i].text, refined[i].text] for i in chosen]
            )
            choices = []
            result = list(candidates)
            for i, verdict in zip(chosen, verdicts, strict=True):
                choice = "refined" if verdict.index == 1 else "initial"
                TRUSTER_CHOICE.labels(choice=choice).inc()
                if verdict.index is None:
                    TRUSTER_UNREADABLE.inc()
                choices.append(choice)
                if choice == "refined":
                    result[i] = refined[i]
            detail.update(
                choices=choices,
                readable=[v.index is not None for v in verdicts],
                # which solution was shown first, and the 1-based position picked
                shown_first=[("initial", "refined")[v.order[0]] for v in verdicts],
                positions=[v.position for v in verdicts],
                answers_initial=[candidates[i].answer for i in chosen],
                answers_refined=[refined[i].answer for i in chosen],
                correct_initial=[ctx.correct(candidates[i].answer) for i in chosen],
                correct_refined=[ctx.correct(refined[i].answer) for i in chosen],
            )
        return result
