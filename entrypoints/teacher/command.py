"""`sciserve data build wkd-teacher --domain D --count N --seed S --out F.jsonl`: what
the command line runs (the `data` group only routes here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from entrypoints.teacher.build import MAX_EXAMPLE_TOKENS, TeacherConfig, build_wkd_teacher
from entrypoints.teacher.generate import DOMAINS

DOMAIN_HELP = (
    f"wkd-teacher: generate and solve problems of this domain ({', '.join(DOMAINS)}; mujoco "
    "and gsm are aliases)."
)


def wkd_teacher(
    *,
    domain: str,
    count: int,
    seed: int,
    out: Path,
    split: str = "train",
    form: str = "mixed",
    max_tokens: int = MAX_EXAMPLE_TOKENS,
    awl_data: Path | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Build, then say what was written. Raises ValueError (a bad option, no tool
    server, a leak) and FileNotFoundError (AWL's test sets missing) with a sentence."""
    if count < 1:
        raise ValueError("--count must be at least 1.")
    if form not in ("choice", "open", "mixed"):
        raise ValueError("--form is choice, open or mixed.")
    config = TeacherConfig(
        domain=domain,
        count=count,
        seed=seed,
        out=out,
        split=split,  # type: ignore[arg-type]  # checked by build_wkd_teacher
        form=form,
        max_tokens=max_tokens if max_tokens > 0 else None,
        **({"awl_data": awl_data} if awl_data is not None else {}),
    )
    dataset, _ = build_wkd_teacher(config, log=echo)
    params = dataset.params
    echo(
        json.dumps(
            {k: params[k] for k in ("domain", "generated", "kept", "dropped", "tokens_per_example")}
        )
    )
    echo(
        f"wrote {len(dataset.examples)} examples to {out} (card {out.with_suffix('.card.json')}, "
        f"records {out.with_suffix('.records.jsonl')}, problems "
        f"{out.with_suffix('.problems.jsonl')})"
    )
