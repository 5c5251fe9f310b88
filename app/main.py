"""Build the FastAPI apps and wire routes; no logic lives here.

- `create_app` is the gateway. Embedded default: it also runs a worker whose engine
  loads in the background, so `/healthz` answers at once and `/readyz` turns true when
  the model is loaded. `with_worker=False` is the distributed gateway (`sciserve
  gateway`), which only queues to Redis.
- `create_worker_app` is a worker process's own small app: health, metrics, adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.limits import BodySizeLimit
from app.readiness import ServiceReadiness
from routers import admin, health, jobs, solve
from workers.engines.base import Engine


def _wire(app: FastAPI, settings: Settings, queue: Any, worker: Any | None) -> None:
    """What the dependencies in app/deps.py read: settings, queue, the worker (also the
    adapter admin), readiness, and the key store and rate limiter when Redis is used."""
    from app.auth import RateLimiter, RedisKeyStore

    redis = getattr(queue, "redis", None)
    if settings.api_keys_required and redis is None:
        raise ValueError("API keys are stored in Redis: set SCISERVE_REDIS_URL to require them.")
    app.state.settings, app.state.queue = settings, queue
    app.state.worker = app.state.adapter_admin = worker
    app.state.readiness = ServiceReadiness(queue, worker)
    app.state.keys = app.state.limiter = None
    if redis is not None:
        app.state.keys = RedisKeyStore(redis, settings.redis_prefix)
        app.state.limiter = RateLimiter(
            redis, settings.redis_prefix, settings.rate_limit_per_minute
        )


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, *, with_worker: bool = True
) -> FastAPI:
    """The gateway. `engine` may be given (unstarted) to share one engine."""
    settings = settings or get_settings()
    tool_servers = _embedded_tool_servers(settings) if with_worker else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.queue_factory import build_queue
        from workers.engines.factory import build_engine
        from workers.runtime import WorkerRuntime

        queue = build_queue(settings)
        worker = None
        if with_worker:
            # Built before serving: a broken adapter registry or a missing model stops
            # start-up here with its message, not a server that never gets ready.
            worker = WorkerRuntime(
                engine or build_engine(settings), queue, settings, tools_mounted=bool(tool_servers)
            )
        _wire(app, settings, queue, worker)
        for server in tool_servers:
            for hook in server.startup:
                await hook()
        if worker is not None:
            worker.start_background()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await queue.close()
            for server in tool_servers:
                for hook in server.shutdown:
                    await hook()

    app = FastAPI(
        title="sciserve",
        version="0.1.0",
        summary="Inference-time serving for scientific and mathematical problem solving.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for module in (solve, jobs, health, admin):
        app.include_router(module.router)
    for server in tool_servers:
        app.mount(f"/tools/{server.name}", server.app)
    return app


def _embedded_tool_servers(settings: Settings) -> list[Any]:
    """The embedded default serves every tool server under /tools/NAME, over the same
    HTTP port, unless tool servers are configured elsewhere."""
    if not settings.mount_tools or settings.tool_urls:
        return []
    from tool_servers.registry import SERVER_NAMES, build_tool_server

    return [build_tool_server(name, settings) for name in SERVER_NAMES]


def create_worker_app(settings: Settings, worker: Any) -> FastAPI:
    """A worker process's HTTP face: /healthz, /readyz, /metrics and /admin/adapters."""
    app = FastAPI(title="sciserve worker", version="0.1.0")
    _wire(app, settings, worker.queue, worker)
    install_error_handlers(app)
    for module in (health, admin):
        app.include_router(module.router)
    return app
