"""The service commands: `serve` (embedded), `gateway`, `worker` and `tool-server`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from contract.settings import Settings
from entrypoints.cli.model import prepare_with_progress


def _distributed_settings() -> Settings:
    settings = Settings()
    if settings.redis_url is None:
        typer.echo("Set SCISERVE_REDIS_URL (e.g. redis://127.0.0.1:6379/0) first.", err=True)
        raise typer.Exit(2)
    return settings


def _run_gateway(settings: Settings, host: str | None, port: int | None, with_worker: bool) -> None:
    import uvicorn

    from entrypoints.embedded import create_embedded_app
    from entrypoints.gateway import create_app
    from entrypoints.limits import raise_open_file_limit, uvicorn_options

    settings.host = host or settings.host
    settings.port = port or settings.port
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise_open_file_limit()
    app = create_embedded_app(settings) if with_worker else create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", **uvicorn_options())


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the embedded service: gateway, in-process queue and one worker with its engine."""
    settings = Settings()
    if not settings.model and settings.engine != "openai":
        prepare_with_progress(settings)
    _run_gateway(settings, host, port, with_worker=True)


def gateway(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the gateway alone: it queues to Redis for `sciserve worker` processes."""
    _run_gateway(_distributed_settings(), host, port, with_worker=False)


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
        prepare_with_progress(settings)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve_worker(settings))


def tool_server(
    name: Annotated[str, typer.Argument(help="python, pde, mechanics, climate or epidemiology.")],
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
    insecure_no_token: Annotated[
        bool,
        typer.Option(
            "--insecure-no-token",
            help="Serve without SCISERVE_TOOL_TOKEN: anyone who reaches the port runs tools. "
            "Only for a trusted loopback.",
        ),
    ] = False,
) -> None:
    """Run one tool server on its own (GET /manifest, POST /invoke, /healthz, /metrics).

    Every route but /healthz requires SCISERVE_TOOL_TOKEN; without one it does not start.
    """
    import uvicorn

    from tool_servers.registry import SERVER_NAMES, ToolTokenMissingError, standalone_app

    if name not in SERVER_NAMES:
        typer.echo(f"Unknown tool server {name!r}; choose one of: {', '.join(SERVER_NAMES)}.",
                   err=True)  # fmt: skip
        raise typer.Exit(2)
    settings = Settings()
    try:
        app = standalone_app(name, settings, insecure_no_token=insecure_no_token)
    except ToolTokenMissingError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if settings.tool_token is None:
        typer.echo(f"Warning: the {name} tool server is open to anyone who reaches port {port} "
                   "(--insecure-no-token).", err=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info")
