"""`sciserve train`: train a LoRA adapter for one role, register it, hot-load it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from contract.settings import Settings

app = typer.Typer(help="Train a LoRA adapter for one role.", no_args_is_help=True)


def _train(method: str, role: str, data: str, out: str, options: dict[str, Any]) -> None:
    """Train with a progress bar, register the adapter, and hot-load it if asked."""
    from pathlib import Path

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from training.trainer import TrainConfig, hot_load, register, train

    settings = Settings()
    base_model = options.pop("base_model") or settings.model
    if base_model is None:
        from workers.models.demo import demo_model_dir  # the prepared demo model

        base_model = str(demo_model_dir(settings))
    registry, load_into = options.pop("registry"), options.pop("load_into")
    config = TrainConfig(method, role, Path(data), Path(out), base_model, **options)  # type: ignore[arg-type]
    with Progress(
        TextColumn(f"[bold]{method} {role}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("train", total=None, loss="-")

        def on_step(step: int, total: int, loss: float | None) -> None:
            progress.update(task, completed=step, total=total, loss=f"{loss:.4f}")

        try:
            report = train(config, on_step)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    typer.echo(
        f"{report.steps} steps in {report.seconds:.0f} s, loss {report.first_loss} -> "
        f"{report.last_loss}; adapter in {report.adapter} (loss log: loss.jsonl)"
    )
    if registry:
        register(
            Path(registry), role, report.adapter, base_model, max_lora_rank=settings.max_lora_rank
        )
        typer.echo(f"registered {role} in {registry}")
    if load_into:
        key = settings.admin_key.get_secret_value() if settings.admin_key else ""
        if not key:
            typer.echo("--load-into needs SCISERVE_ADMIN_KEY (the service's admin key).", err=True)
            raise typer.Exit(2)
        typer.echo(json.dumps(hot_load(load_into, key, role, report.adapter, base_model)))


def _train_command(method: str) -> Any:
    def command(
        role: Annotated[str, typer.Option(help="policy, asker or truster.")],
        data: Annotated[str, typer.Option(help="`sciserve data build`, trl or OpenAI chat JSONL.")],
        out: Annotated[str, typer.Option(help="Adapter folder.")],
        base_model: Annotated[
            str | None, typer.Option(help="Base model folder. Default: the served model.")
        ] = None,
        rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
        targets: Annotated[
            str | None,
            typer.Option(help="Comma-separated projections (q_proj,v_proj). Default: all seven."),
        ] = None,
        steps: Annotated[int, typer.Option(help="Optimizer steps; -1: --epochs.")] = -1,
        epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 1.0,
        batch_size: Annotated[int, typer.Option(min=1)] = 4,
        learning_rate: Annotated[
            float | None, typer.Option(help="Default: 2e-4 SFT, 5e-5 DPO.")
        ] = None,
        max_length: Annotated[int, typer.Option(help="Tokens per example.")] = 2048,
        max_minutes: Annotated[
            float | None,
            typer.Option(min=0, help="Wall-clock budget: stop after the step that passes it."),
        ] = None,
        seed: Annotated[int, typer.Option()] = 0,
        registry: Annotated[
            str | None, typer.Option(help="Adapter registry file to put the adapter in.")
        ] = None,
        load_into: Annotated[
            str | None,
            typer.Option(help="A running service or worker URL: POST /admin/adapters there."),
        ] = None,
    ) -> None:
        _train(
            method, role, data, out,
            {"base_model": base_model, "rank": rank, "max_steps": steps,
             "target_modules": targets.split(",") if targets else None, "epochs": epochs,
             "batch_size": batch_size, "learning_rate": learning_rate, "max_length": max_length,
             "seed": seed, "registry": registry, "load_into": load_into,
             "max_seconds": None if max_minutes is None else max_minutes * 60},
        )  # fmt: skip

    command.__doc__ = (
        "Supervised fine-tuning (completion only) of a LoRA adapter."
        if method == "sft"
        else "DPO on preference pairs (TPO) of a LoRA adapter; the reference is the base."
    )
    return command


app.command("sft")(_train_command("sft"))
app.command("dpo")(_train_command("dpo"))
