"""Build the gateway's FastAPI apps and wire routes; no logic lives here.

It sits in `entrypoints/`, above `routers/`, because it imports every router: the
gateway package (`app/`) below it never imports a router, so the floors stay one-way.

- `create_app` is the gateway. It only queues jobs; whoever starts it may hand it a
  worker to run beside it (the embedded default, `entrypoints/embedded.py`) and side
  apps to mount (the embedded tool servers). The gateway knows such a worker only by
  the small protocols in `app/deps.py`, never by its class.
- `create_worker_app` is a worker process's own small app: health, metrics, adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI

from app.auth import LocalRateLimiter, RateLimiter, RedisKeyStore, SqliteKeyStore
from app.content_type import RequireJson
from app.deps import BackgroundWorker
from app.errors import install_error_handlers
from app.openapi import install_openapi
from app.readiness import ServiceReadiness
from app.sessions import RedisSessions, SqliteSessions
from contract.body_limit import BodySizeLimit
from contract.settings import Settings, get_settings
from contract.telemetry import Telemetry, TraceRequests
from jobqueue.factory import build_queue
from jobqueue.protocol import JobQueue
from routers import admin, health, jobs, openai, solve, ui

WorkerFactory = Callable[[JobQueue], BackgroundWorker]
# The doors that queue a job: each request to one is a span, and its job joins that trace.
TRACED_DOORS = {("POST", "/solve"), ("POST", "/jobs"), ("POST", "/v1/chat/completions")}


class SideApp(Protocol):
    """An ASGI app served under `/tools/NAME` of the same port, with its lifecycle."""

    name: str
    app: Any
    startup: list[Callable[[], Awaitable[None]]]
    shutdown: list[Callable[[], Awaitable[None]]]

    @property
    def token_required(self) -> bool:
        """Whether the app answers only callers with the service token."""
        ...


def _wire(app: FastAPI, settings: Settings, queue: Any, worker: Any | None) -> None:
    """What the dependencies in app/deps.py read: settings, queue, the worker (also the
    adapter admin), readiness, and the key store and rate limiter when Redis is used."""
    redis = getattr(queue, "redis", None)
    if settings.api_keys_required and redis is None and settings.key_store is None:
        raise ValueError(
            "API keys need a store: set SCISERVE_REDIS_URL, or SCISERVE_KEY_STORE (a SQLite "
            "file) for one box without Redis."
        )
    app.state.settings, app.state.queue = settings, queue
    app.state.worker = app.state.adapter_admin = worker
    app.state.readiness = ServiceReadiness(queue, worker)
    app.state.keys = app.state.limiter = app.state.sessions = None
    if redis is not None:
        app.state.keys = RedisKeyStore(redis, settings.redis_prefix)
        app.state.sessions = RedisSessions(redis, settings.redis_prefix)  # the trace pages'
        app.state.limiter = RateLimiter(
            redis, settings.redis_prefix, settings.rate_limit_per_minute,
            settings.tokens_per_minute,
        )  # fmt: skip
    elif settings.key_store is not None:
        app.state.keys = SqliteKeyStore(settings.key_store)
        app.state.sessions = SqliteSessions(settings.key_store)
        app.state.limiter = LocalRateLimiter(
            settings.rate_limit_per_minute, settings.tokens_per_minute
        )


def create_app(
    settings: Settings | None = None,
    *,
    build_worker: WorkerFactory | None = None,
    side_apps: Sequence[SideApp] = (),
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """The gateway; with `build_worker`, a worker on the same queue runs beside it.
    `telemetry`: its traces (default: as the OTEL_* variables ask)."""
    settings = settings or get_settings()
    if telemetry is None:  # a gateway alone (`sciserve gateway`)
        telemetry = Telemetry.from_env(
            content=settings.trace_content, service_name="sciserve-gateway"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue = build_queue(settings)
        # Built before serving: a broken adapter registry or a missing model stops
        # start-up here with its message, not a server that never gets ready.
        worker = build_worker(queue) if build_worker is not None else None
        _wire(app, settings, queue, worker)
        for side in side_apps:
            for hook in side.startup:
                await hook()
        if worker is not None:
            worker.start_background()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await queue.close()
            for side in side_apps:
                for hook in side.shutdown:
                    await hook()
            telemetry.shutdown()  # export the spans that are left

    app = FastAPI(
        title="sciserve",
        version="0.1.0",
        summary="Inference-time serving for scientific and mathematical problem solving.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequireJson)
    # Outermost: a request refused by the limits above is a span too.
    app.add_middleware(
        TraceRequests, telemetry=telemetry, routes=TRACED_DOORS, component="sciserve.gateway"
    )
    app.state.telemetry = telemetry
    for module in (solve, jobs, openai, health, admin, ui):
        app.include_router(module.router)
    for side in side_apps:
        # A side app shares the gateway's port but none of its keys, rate limits or
        # budgets: only one that demands the service token may be mounted.
        if not side.token_required:
            raise ValueError(
                f"The {side.name} tool server would be open to every caller of the gateway; "
                "mount only tool servers built with a tool token."
            )
        app.mount(f"/tools/{side.name}", side.app)
    return app


def create_worker_app(settings: Settings, worker: Any) -> FastAPI:
    """A worker process's HTTP face: /healthz, /readyz, /metrics and /admin/adapters."""
    app = FastAPI(title="sciserve worker", version="0.1.0")
    _wire(app, settings, worker.queue, worker)
    install_error_handlers(app)
    install_openapi(app)
    # The same limit as the gateway: /admin/adapters takes a body here too.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequireJson)
    for module in (health, admin):
        app.include_router(module.router)
    return app
