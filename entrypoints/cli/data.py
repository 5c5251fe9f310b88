"""`sciserve data`: training datasets built from trace records."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Training datasets built from trace records.", no_args_is_help=True)


@app.command("build")
def data_build(
    kind: Annotated[
        str,
        typer.Argument(help="wkd, wkd-teacher, tua, score, asker, truster, truster-pairs or tpo."),
    ],
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Trace folders or JSONL files (none for wkd-teacher --domain)."),
    ] = None,
    out: Annotated[str, typer.Option(help="Output JSONL; its card goes next to it.")] = "",
    seed: Annotated[int, typer.Option(help="Shuffling and balancing seed.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="tua: direct accuracy at or above which a problem is easy.")
    ] = 0.5,
    domain: Annotated[
        str | None,
        typer.Option(
            help="wkd-teacher: generate problems of this domain and solve them with "
            "its tool server (pde, mechanics, climate, epidemiology, gsm_symbolic)."
        ),
    ] = None,
    count: Annotated[int, typer.Option(help="wkd-teacher: problems to generate.")] = 100,
    split: Annotated[
        str,
        typer.Option(
            help="wkd-teacher: train, or heldout (disjoint parameters); truster-pairs: "
            "train, heldout (a quarter of the problems, by a hash of their text) or all."
        ),
    ] = "train",
    form: Annotated[str, typer.Option(help="wkd-teacher: choice, open or mixed.")] = "mixed",
    max_tokens: Annotated[
        int, typer.Option(help="wkd-teacher: longest example kept, in demo-model tokens (0: any).")
    ] = 1536,
) -> None:
    """Build one chat-format dataset (JSONL + card) from trace records, or with
    `wkd-teacher --domain D` from generated problems the tool servers solve."""
    from pathlib import Path

    if kind == "wkd-teacher" and domain is not None:
        from entrypoints.teacher.command import wkd_teacher

        try:
            wkd_teacher(
                domain=domain,
                count=count,
                seed=seed,
                out=Path(out or f"{kind}.jsonl"),
                split=split,
                form=form,
                max_tokens=max_tokens,
                echo=typer.echo,
            )
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        return

    if not sources:
        typer.echo(f"{kind} is built from trace records: give their folders or files.", err=True)
        raise typer.Exit(2)
    from training.build import build
    from training.records import RecordError

    params: dict[str, object] = {}
    if kind == "tua":
        params["threshold"] = threshold
    if kind == "truster-pairs":
        params["split"] = split
    target = Path(out or f"{kind}.jsonl")
    try:
        dataset, card = build(kind, [Path(s) for s in sources], target, seed=seed, **params)
    except (RecordError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(dataset.counts))
    typer.echo(f"wrote {len(dataset.examples)} examples to {target} (card {card})")
