"""A worker: one engine, its pipeline and the claim loop, plus the two questions the
HTTP side may ask about the engine without touching it: "are you ready?" and
"load/unload this adapter". It runs inside the gateway (embedded default) or as its
own process (`sciserve worker`, workers/process.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Literal

from adapters.registry import ROLES, AdapterSpec, validate_adapter
from contract.errors import Outcome
from contract.schemas import AdapterInfo, AdapterLoad
from contract.settings import Settings
from jobqueue.adapter_set import AdapterSet
from jobqueue.protocol import JobQueue
from workers.adapter_sync import ADAPTERS_LOADED, AdapterSync
from workers.engines.base import Engine
from workers.engines.factory import default_worker_concurrency
from workers.loop import run_worker
from workers.pipeline import SolvePipeline

log = logging.getLogger(__name__)


class WorkerRuntime:
    """Starts in the background so /healthz answers while the model loads and /readyz
    turns true once it can serve; `stop` drains running jobs, then hands back the rest."""

    def __init__(
        self, engine: Engine, queue: JobQueue, settings: Settings, *, tools_mounted: bool = False
    ):
        self.engine = engine
        self.tools_mounted = tools_mounted
        self.queue = queue
        self.settings = settings
        self.state: Literal["starting", "ready", "failed", "stopping"] = "starting"
        self.error: str | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.adapter_sync = self._pool_sync()
        ADAPTERS_LOADED.set_function(lambda: len(self.engine.adapters()))

    def _pool_sync(self) -> AdapterSync | None:
        """Over Redis, the worker follows the pool-wide adapter set; embedded, it has
        only its own /admin/adapters."""
        redis = getattr(self.queue, "redis", None)
        if redis is None:
            return None
        name = getattr(self.queue, "consumer", None) or f"{socket.gethostname()}-{os.getpid()}"
        return AdapterSync(self, AdapterSet(redis, self.settings.redis_prefix), str(name))

    async def run(self) -> None:
        """Load the engine, then claim jobs until stopped."""
        try:
            await self.engine.start()
        except Exception as exc:
            log.exception("engine failed to start")
            self.state, self.error = "failed", f"The engine failed to start: {exc}"
            await self._fail_jobs_while_broken(self.error)
            return
        sync_task = None
        if self.adapter_sync is not None:
            # The whole pool set before the first job: a new worker serves the same roles.
            try:
                await self.adapter_sync.apply()
            except Exception as exc:
                log.warning("could not read the pool's adapter set at start: %s", exc)
            sync_task = asyncio.create_task(self.adapter_sync.run(self._stop))
        self.state = "ready"
        pipeline = SolvePipeline.from_settings(self.engine, self.settings, self.tools_mounted)
        concurrency = self.settings.worker_concurrency or default_worker_concurrency(self.engine)
        log.info("worker ready: %d jobs at once", concurrency)
        try:
            await run_worker(
                self.queue,
                pipeline,
                concurrency=concurrency,
                stop=self._stop,
                drain_timeout_s=self.settings.drain_timeout_s,
            )
        finally:
            await pipeline.aclose()
            if sync_task is not None:
                self._stop.set()
                with contextlib.suppress(Exception):
                    await sync_task

    async def _fail_jobs_while_broken(self, reason: str) -> None:
        """Without an engine, every job gets the reason at once instead of hanging."""
        while not self._stop.is_set():
            job = await self.queue.claim(1.0)
            if job is not None:
                await self.queue.fail(job.id, reason, Outcome.internal)

    def start_background(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Claim nothing more, let running jobs finish (bounded), then close the engine."""
        self.state = "stopping"
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.engine.close()

    async def readiness(self) -> tuple[bool, str]:
        if self.state != "ready":
            return False, self.error or f"The worker is {self.state}."
        if not await self.engine.health():
            return False, "The engine does not answer its health check."
        return True, "ready"

    # --- adapter administration (app.deps.AdapterAdmin) ---
    async def load_adapter(self, body: AdapterLoad) -> AdapterInfo:
        spec = validate_adapter(
            body.role,
            Path(body.path).expanduser(),
            body.base_model,
            body.rank,
            served_model=self.engine.model_name,
            max_lora_rank=self.settings.max_lora_rank,
        )
        await self.engine.load_adapter(spec)
        return AdapterInfo(role=spec.role, path=str(spec.path), rank=spec.rank, loaded=True)

    async def unload_adapter(self, role: str) -> None:
        await self.engine.unload_adapter(role)

    def loaded_adapters(self) -> dict[str, AdapterSpec]:
        return self.engine.adapters()

    async def list_adapters(self) -> list[AdapterInfo]:
        loaded = self.engine.adapters()
        return [
            AdapterInfo(
                role=role,
                path=str(loaded[role].path) if role in loaded else None,
                rank=loaded[role].rank if role in loaded else None,
                loaded=role in loaded,
                error=self.adapter_sync.errors.get(role) if self.adapter_sync else None,
            )
            for role in ROLES
        ]
