"""The five tool servers by name, and how to build each one's app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI

from contract.schemas import TOOL_SERVER_NAMES
from contract.settings import MIN_TOOL_TOKEN_LENGTH, Settings
from contract.telemetry import OFF, Telemetry, TraceRequests
from tool_servers.base import Tool, create_tool_app

SERVER_NAMES = TOOL_SERVER_NAMES  # the public contract names them; /solve validates against it


class ToolTokenMissingError(ValueError):
    """A standalone tool server asked to start with no SCISERVE_TOOL_TOKEN."""


@dataclass
class ToolServer:
    """A built tool server: its app, and what to start and stop with it (the sandbox
    zygote for `python`; nothing for the others)."""

    name: str
    app: FastAPI
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def token_required(self) -> bool:
        """Whether every route but /healthz requires the service token."""
        return bool(self.app.state.token_required)


def build_tool_server(name: str, settings: Settings, telemetry: Telemetry = OFF) -> ToolServer:
    """Build one server; imports stay inside so a server loads only its own libraries.
    With `telemetry` on, each `POST /invoke` is a span that continues the caller's
    `traceparent` (the worker's tool-call span).

    It requires `settings.tool_token` when one is set and is open without one: the doors
    decide (`standalone_app` refuses to start open unless told to, the embedded service
    makes a token), so an in-process test client can still build one.
    """
    token = settings.tool_token
    if name == "python":
        from tool_servers.python_tool import python_tools
        from tool_servers.sandbox.limits import Limits
        from tool_servers.sandbox.pool import SandboxPool

        limits = Limits(
            cpu_seconds=settings.sandbox_cpu_s, memory_bytes=settings.sandbox_memory_mb << 20
        )
        pool = SandboxPool(settings.sandbox_warm, limits, settings.sandbox_wall_s)
        app = create_tool_app(name, python_tools(pool), token=token, max_concurrency=64)
        _trace(app, name, telemetry)
        return ToolServer(name, app, [pool.start], [pool.close])
    tools: list[Tool]
    if name == "pde":
        from tool_servers.pde import pde_tools

        tools = pde_tools(settings.tool_numerics)
    elif name == "mechanics":
        from tool_servers.mechanics import mechanics_tools

        tools = mechanics_tools(settings.tool_numerics)
    elif name == "climate":
        from tool_servers.climate import CLIMATE_TOOLS as tools
    elif name == "epidemiology":
        from tool_servers.epidemiology import EPIDEMIOLOGY_TOOLS as tools
    else:
        raise ValueError(f"Unknown tool server {name!r}; known: {', '.join(SERVER_NAMES)}.")
    # Mechanics returns sampled trajectories, which are larger than a single number.
    max_result_bytes = 4 << 20 if name == "mechanics" else 256 << 10
    app = create_tool_app(name, tools, token=token, max_result_bytes=max_result_bytes)
    _trace(app, name, telemetry)
    return ToolServer(name, app)


def _trace(app: FastAPI, name: str, telemetry: Telemetry) -> None:
    """Added last, so it runs first: a call refused for its token is a span too."""
    routes = {("POST", "/invoke")}
    app.add_middleware(
        TraceRequests, telemetry=telemetry, routes=routes, component=f"sciserve.tools.{name}"
    )


def standalone_app(name: str, settings: Settings, *, insecure_no_token: bool = False) -> FastAPI:
    """A server as its own process (`sciserve tool-server NAME`), with its lifecycle.

    Without SCISERVE_TOOL_TOKEN it refuses to start (`ToolTokenMissingError`): whoever
    reaches its port could run code past the gateway's keys, rate limits and budgets.
    `insecure_no_token` serves it open anyway (a loopback-only test or benchmark).
    """
    if settings.tool_token is None and not insecure_no_token:
        raise ToolTokenMissingError(
            f"The {name} tool server needs SCISERVE_TOOL_TOKEN (the same secret the workers "
            f"send, at least {MIN_TOOL_TOKEN_LENGTH} characters): without it anyone who "
            "reaches its port runs "
            "tools. Set it, or pass --insecure-no-token to serve it open on a trusted "
            "loopback."
        )
    telemetry = Telemetry.from_env(service_name=f"sciserve-tools-{name}")
    server = build_tool_server(name, settings, telemetry)

    async def start() -> None:
        for hook in server.startup:
            await hook()

    async def stop() -> None:
        for hook in server.shutdown:
            await hook()
        telemetry.shutdown()  # export what is left

    server.app.router.on_startup.append(start)
    server.app.router.on_shutdown.append(stop)
    return server.app
