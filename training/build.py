"""`sciserve data build KIND`: one builder per kind, the role it trains, and its loss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.art import build_asker, build_truster, build_truster_pairs
from training.awl import build_teacher, build_tua, build_wkd
from training.examples import Dataset
from training.records import read_records
from training.score import build_score
from training.tpo import build_tpo


@dataclass(frozen=True)
class Kind:
    builder: Callable[..., Dataset]
    role: str  # the adapter role the data trains
    method: str  # sft or dpo


KINDS: dict[str, Kind] = {
    "wkd": Kind(build_wkd, "policy", "sft"),
    # the teacher's trace records (entrypoints/teacher writes them with
    # `sciserve data build wkd-teacher --domain D`); rebuilt from them here
    "wkd-teacher": Kind(build_teacher, "policy", "sft"),
    "tua": Kind(build_tua, "policy", "sft"),
    "score": Kind(build_score, "policy", "sft"),
    "asker": Kind(build_asker, "asker", "sft"),
    "truster": Kind(build_truster, "truster", "sft"),
    # verifiable pairs from votes' samples (any `samples: K` job with a reference)
    "truster-pairs": Kind(build_truster_pairs, "truster", "sft"),
    "tpo": Kind(build_tpo, "policy", "dpo"),
}


def build(
    kind: str, sources: Sequence[Path], out: Path, seed: int = 0, **params: Any
) -> tuple[Dataset, Path]:
    """Build one dataset from trace records and write it with its card."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; the kinds are {', '.join(KINDS)}.")
    dataset = KINDS[kind].builder(list(read_records(sources)), seed=seed, **params)
    return dataset, dataset.write(out, sources, seed)
