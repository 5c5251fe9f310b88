"""SCoRe (arXiv 2409.12917) self-correction pairs from traces.

Each SCoRe round of a record (`attempts ≥ 2`, a reference) gives (first attempt,
second attempt) under the correction instruction, exactly as served. Kept: fixes
(incorrect → correct) and kept-correct pairs (correct → correct). SCoRe §4 warns that
training on second attempts alone collapses into never changing the first answer, and
that learning only to edit breaks correct answers; so both kinds are kept, with the
kept-correct pairs capped at `kept_ratio` times the fixes. Pairs that end incorrect
are never targets.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from training.examples import Dataset, Example, Record, graded, sft, stages


def build_score(records: Iterable[Record], seed: int = 0, kept_ratio: float = 1.0) -> Dataset:
    rng = random.Random(seed)
    counts = {"rounds": 0, "i_to_c": 0, "c_to_c": 0, "c_to_i": 0, "i_to_i": 0, "ungraded": 0}
    fixes: list[Example] = []
    kept: list[Example] = []
    for record in records:
        for stage in stages(record, "selfcorrect"):
            detail = stage["detail"]
            before, after = detail.get("answers_before", []), detail.get("answers_after", [])
            for call, first, second in zip(stage["calls"], before, after, strict=False):
                counts["rounds"] += 1
                was, now = graded(record, first), graded(record, second)
                if was is None or now is None:
                    counts["ungraded"] += 1
                    continue
                flip = f"{'c' if was else 'i'}_to_{'c' if now else 'i'}"
                counts[flip] += 1
                if not now:
                    continue
                example = sft(
                    call["messages"], call["outputs"][0], record=record["id"], kind="score",
                    label=flip,
                )  # fmt: skip
                (fixes if flip == "i_to_c" else kept).append(example)
    rng.shuffle(kept)
    kept = kept[: int(len(fixes) * kept_ratio)]
    examples = [*fixes, *kept]
    rng.shuffle(examples)
    counts["fix_examples"], counts["kept_correct_examples"] = len(fixes), len(kept)
    return Dataset(
        "score", "SCoRe §4 (pairs of attempts; collapse warning)", examples, counts,
        {"kept_ratio": kept_ratio},
    )  # fmt: skip
