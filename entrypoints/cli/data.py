"""`sciserve data`: training datasets built from trace records."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Training datasets built from trace records.", no_args_is_help=True)


@app.command("build")
def data_build(
    kind: Annotated[str, typer.Argument(help="wkd, tua, score, asker, truster or tpo.")],
    sources: Annotated[list[str], typer.Argument(help="Trace folders or JSONL files.")],
    out: Annotated[str, typer.Option(help="Output JSONL; its card goes next to it.")] = "",
    seed: Annotated[int, typer.Option(help="Shuffling and balancing seed.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="tua: direct accuracy at or above which a problem is easy.")
    ] = 0.5,
) -> None:
    """Build one chat-format dataset (JSONL + card) from trace records."""
    from pathlib import Path

    from training.build import build
    from training.records import RecordError

    params = {"threshold": threshold} if kind == "tua" else {}
    target = Path(out or f"{kind}.jsonl")
    try:
        dataset, card = build(kind, [Path(s) for s in sources], target, seed=seed, **params)
    except (RecordError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(dataset.counts))
    typer.echo(f"wrote {len(dataset.examples)} examples to {target} (card {card})")
