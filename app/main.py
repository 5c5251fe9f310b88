"""Build the FastAPI app and wire routes; no logic lives here.

Embedded default: the lifespan creates the in-process queue and one worker whose
engine loads in the background, so `/healthz` answers at once and `/readyz` turns
true when the model is loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.queue import InProcessQueue
from routers import admin, health, jobs, solve
from workers.engines.base import Engine


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The embedded service. `engine` may be given (unstarted) to share one engine."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from workers.engines.factory import build_engine
        from workers.runtime import EmbeddedWorker

        queue = InProcessQueue(settings.queue_max_depth, settings.result_ttl_s)
        # Built before serving: a broken adapter registry or a missing model stops
        # start-up here with its message, instead of a server that never gets ready.
        worker = EmbeddedWorker(engine or build_engine(settings), queue, settings)
        app.state.settings, app.state.queue, app.state.worker = settings, queue, worker
        worker.start_background()
        try:
            yield
        finally:
            await worker.stop()

    app = FastAPI(
        title="sciserve",
        version="0.1.0",
        summary="Inference-time serving for scientific and mathematical problem solving.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (solve, jobs, health, admin):
        app.include_router(module.router)
    return app
