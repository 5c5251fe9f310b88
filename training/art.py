"""ART (arXiv 2311.07961) Asker and Truster examples from traces (our prompts,
`workers/prompts.py`, ART_PROMPT_VERSION 2; taken from the trace as served).

- Asker (ART §3.1, the Asker decides whether to refine): its prompt (problem + draft)
  → the sub-questions it wrote, then "Refine: yes" when refining fixed the draft
  (incorrect → correct) or "Refine: no" when the draft was already correct. A draft
  that stayed wrong gives no label (nothing showed that refining helps).
- Truster (ART §3.3, choosing between the initial and refined solutions): its prompt
  (problem + both solutions, in the order shown) → "Solution N" for the correct one,
  only when exactly one of the two is correct.
Both are balanced by down-sampling to the rarer label (refine/no-refine; initial/
refined), so a role does not learn the base rate instead of the decision.
- Truster from votes (`truster-pairs`): ART's own pairs are rare (a refine must flip an
  answer), but every vote with a reference holds verifiable pairs: two sampled
  solutions of one problem, exactly one correct. Each pair is shown in both orders
  (the position carries no signal), in the prompt the worker serves
  (`workers.prompts.truster_prompt`), target "Solution N". Problems are split by a hash
  of their text, so a held-out problem's pairs never reach training.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Literal

from contract.answers import extract_answer
from contract.role_prompts import question_text, truster_prompt
from training.examples import Dataset, Example, Record, balance, graded, sft, stages

Split = Literal["train", "heldout", "all"]
HELDOUT_SHARE = 0.25


def _asker_target(questions: list[str], refine: bool) -> str:
    lines = [f"Q: {q}" for q in questions]
    return "\n".join([*lines, f"Refine: {'yes' if refine else 'no'}"])


def build_asker(records: Iterable[Record], seed: int = 0) -> Dataset:
    counts = {"drafts": 0, "refine": 0, "no_refine": 0, "unlabelled": 0}
    examples: list[Example] = []
    for record in records:
        asks, refines = stages(record, "art_ask"), stages(record, "art_refine")
        if not asks:
            continue
        ask = asks[0]
        refine = refines[0]["detail"] if refines else {"refined": []}
        after = dict(zip(refine["refined"], refine.get("answers_after", []), strict=False))
        initial = _initial_answers(record)
        for index, call in enumerate(ask["calls"]):
            counts["drafts"] += 1
            questions = ask["detail"]["questions"][index]
            was = graded(record, initial[index]) if index < len(initial) else None
            fixed = index in after and graded(record, after[index]) is True
            if was is True:
                label = False
            elif was is False and fixed and questions:
                label = True
            else:
                counts["unlabelled"] += 1
                continue
            counts["refine" if label else "no_refine"] += 1
            target = _asker_target(questions, label)
            examples.append(
                sft(call["messages"], target, record=record["id"], kind="asker",
                    label="refine" if label else "no_refine")
            )  # fmt: skip
    kept = balance(examples, lambda e: e["meta"]["label"], random.Random(seed))
    return Dataset("art-asker", "ART §3.1 Asker (balanced)", kept, counts)


def _initial_answers(record: Record) -> list[str | None]:
    """Each candidate's answer as the Asker saw it: after the last refine stage
    before ART (SCoRe rounds), else after generate."""
    rounds = stages(record, "selfcorrect")
    if rounds:
        return list(rounds[-1]["detail"].get("answers_after", []))
    generate = stages(record, "generate")
    return list(generate[0]["detail"].get("answers", [])) if generate else []


def build_truster(records: Iterable[Record], seed: int = 0) -> Dataset:
    counts = {"pairs": 0, "initial_right": 0, "refined_right": 0, "undecided": 0}
    examples: list[Example] = []
    for record in records:
        for stage in stages(record, "art_trust"):
            detail = stage["detail"]
            for index, call in enumerate(stage["calls"]):
                counts["pairs"] += 1
                initial = detail["correct_initial"][index]
                refined = detail["correct_refined"][index]
                if initial is None or refined is None or initial == refined:
                    counts["undecided"] += 1
                    continue
                right = "initial" if initial else "refined"
                counts[f"{right}_right"] += 1
                position = 1 if detail["shown_first"][index] == right else 2
                examples.append(
                    sft(call["messages"], f"Solution {position}", record=record["id"],
                        kind="truster", label=right)
                )  # fmt: skip
    kept = balance(examples, lambda e: e["meta"]["label"], random.Random(seed))
    return Dataset("art-truster", "ART §3.3 Truster (balanced)", kept, counts)


def heldout_problem(problem: str, share: float = HELDOUT_SHARE) -> bool:
    """A stable split by the problem's text: the same problem always falls on one side,
    whichever traces, seeds or orders the pairs came from."""
    digest = hashlib.sha256(problem.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _graded_outputs(record: Record) -> tuple[list[str], list[str]]:
    """The record's vote samples, read and graded as the worker reads them: (right, wrong).
    A sample with no readable answer is left out: rejecting it needs no judgement."""
    right: list[str] = []
    wrong: list[str] = []
    for stage in stages(record, "generate"):
        for call in stage["calls"]:
            for text in call["outputs"]:
                answer = extract_answer(
                    text, record["answer_type"], record["request"].get("options")
                )
                if answer is None:
                    continue
                ok = graded(record, answer)
                if ok is not None and text not in (right if ok else wrong):
                    (right if ok else wrong).append(text)
    return right, wrong


def build_truster_pairs(
    records: Iterable[Record], seed: int = 0, split: Split = "all", per_problem: int = 4
) -> Dataset:
    """Up to `per_problem` (right, wrong) pairs per problem, each in both orders."""
    rng = random.Random(seed)
    counts = {"problems": 0, "problems_with_pairs": 0, "pairs": 0, "left_out_split": 0}
    examples: list[Example] = []
    for record in records:
        request = record["request"]
        if request.get("reference") is None:
            continue
        counts["problems"] += 1
        if split != "all" and heldout_problem(request["problem"]) != (split == "heldout"):
            counts["left_out_split"] += 1
            continue
        right, wrong = _graded_outputs(record)
        pairs = [(r, w) for r in right for w in wrong]
        if not pairs:
            continue
        counts["problems_with_pairs"] += 1
        question = question_text(request["problem"], request.get("options"))
        for good, bad in rng.sample(pairs, min(per_problem, len(pairs))):
            counts["pairs"] += 1
            for position, shown in ((1, [good, bad]), (2, [bad, good])):
                prompt = [{"role": "user", "content": truster_prompt(question, shown)}]
                examples.append(
                    sft(prompt, f"Solution {position}", record=record["id"], kind="truster",
                        label=f"solution_{position}", problem=request["problem"])
                )  # fmt: skip
    rng.shuffle(examples)
    return Dataset(
        "truster-pairs",
        "ART §3.3 Truster, pairs from votes (exactly one correct, both orders)",
        examples,
        counts,
        {"split": split, "heldout_share": HELDOUT_SHARE, "per_problem": per_problem},
    )
