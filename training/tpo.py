"""TPO (Thought Preference Optimization, arXiv 2410.10630) preference pairs for DPO.

TPO §2: sample several (thought, response) outputs of the thought prompt, score the
responses only (the judge never sees the thoughts), and train with DPO on the best vs
the worst. Our score is correctness against the reference: per prompt, one pair of a
correct output (chosen) and an incorrect one (rejected), both whole outputs — thought
and response — as the model wrote them. Records must come from `think: true` jobs with
`samples ≥ 2`, a reference, and `reveal_thoughts` (otherwise the sink wrote no
thoughts, by the access rule, and there is nothing to prefer).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from training.examples import Dataset, Example, Record, assistant, graded, stages


def build_tpo(records: Iterable[Record], seed: int = 0, pairs_per_prompt: int = 1) -> Dataset:
    rng = random.Random(seed)
    counts = {"records": 0, "thoughts_hidden": 0, "one_sided": 0, "pairs": 0}
    examples: list[Example] = []
    for record in records:
        if not record["request"]["strategy"].get("think"):
            continue
        counts["records"] += 1
        if not record.get("thoughts_revealed"):
            counts["thoughts_hidden"] += 1
            continue
        generate = stages(record, "generate")
        if not generate or not generate[0]["calls"]:
            continue
        calls = generate[0]["calls"][:2]  # the greedy and the sampled request
        outputs = [text for call in calls for text in call["outputs"]]
        answers = generate[0]["detail"].get("answers") or []
        scored = [(o, graded(record, a)) for o, a in zip(outputs, answers, strict=False)]
        good = [o for o, ok in scored if ok is True]
        bad = [o for o, ok in scored if ok is False]
        if not good or not bad:
            counts["one_sided"] += 1
            continue
        for _ in range(pairs_per_prompt):
            examples.append(
                {
                    "prompt": calls[0]["messages"],
                    "chosen": assistant(rng.choice(good)),
                    "rejected": assistant(rng.choice(bad)),
                    "meta": {"record": record["id"], "kind": "tpo"},
                }
            )
    counts["pairs"] = len(examples)
    rng.shuffle(examples)
    return Dataset("tpo", "TPO §2 (thought preference pairs, DPO)", examples, counts)
