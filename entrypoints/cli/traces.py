"""`sciserve traces`: trace records of finished jobs (the start of the training loop:
traces → datasets → adapters)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Trace records of finished jobs.", no_args_is_help=True)


def _unix_time(value: str | None) -> float | None:
    """An ISO date/time (UTC unless it says otherwise) or Unix seconds."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        return float(value)
    except ValueError:
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@app.command("export")
def traces_export(
    sources: Annotated[
        list[str], typer.Argument(help="Trace folders (SCISERVE_TRACE_SINK) or JSONL files.")
    ],
    out: Annotated[str, typer.Option(help="Output JSONL.")] = "traces.jsonl",
    strategy: Annotated[
        str | None, typer.Option(help="Strategy name: direct, adaptive, think, vote, ...")
    ] = None,
    correct: Annotated[
        str, typer.Option(help="true, false, unknown (no reference) or any.")
    ] = "any",
    since: Annotated[str | None, typer.Option(help="ISO time or Unix seconds.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or Unix seconds.")] = None,
) -> None:
    """Filter trace records and write them to one JSONL file."""
    from pathlib import Path

    from training.records import RecordError, RecordFilter, export

    if correct not in ("true", "false", "unknown", "any"):
        typer.echo("--correct is one of true, false, unknown, any.", err=True)
        raise typer.Exit(2)
    try:
        keep = RecordFilter(strategy, correct, _unix_time(since), _unix_time(until))  # type: ignore[arg-type]
        kept, read = export([Path(s) for s in sources], Path(out), keep)
    except (RecordError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"kept {kept} of {read} records in {out}")
