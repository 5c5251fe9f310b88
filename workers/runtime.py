"""A worker: one engine, its pipeline and the claim loop, plus the two questions the
HTTP side may ask about the engine without touching it: "are you ready?" and
"load/unload this adapter". It runs inside the gateway (embedded default) or as its
own process (`sciserve worker`, entrypoints/worker.py).

A dead engine (vLLM's engine-core process killed, OOM-killed or crashed) is restarted
in place, a bounded number of times, and then the worker gives up; see `WorkerRuntime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Literal

from adapters.registry import ROLES, AdapterSpec, validate_adapter
from contract.errors import EngineUnavailableError, Outcome
from contract.schemas import AdapterInfo, AdapterLoad, SolveRequest
from contract.settings import Settings
from contract.telemetry import OFF, Telemetry
from jobqueue.adapter_set import AdapterSet
from jobqueue.protocol import JobQueue
from workers.adapter_sync import ADAPTERS_LOADED, AdapterSync
from workers.engines.base import Engine
from workers.engines.factory import default_worker_concurrency
from workers.loop import run_worker
from workers.metrics import ENGINE_DEAD, ENGINE_RESTARTS
from workers.pipeline import SolvePipeline

log = logging.getLogger(__name__)
# At most this many in-place engine restarts within the window; one more death and the
# worker gives up (a supervised worker process then exits for its supervisor).
MAX_ENGINE_RESTARTS = 3
RESTART_WINDOW_S = 600.0

State = Literal["starting", "ready", "restarting", "failed", "stopping"]


class WorkerRuntime:
    """Starts in the background so /healthz answers while the model loads and /readyz
    turns true once it can serve; `stop` drains running jobs, then hands back the rest.

    When the engine dies (an engine with `is_dead`, i.e. vLLM whose engine-core child
    process exited): the claim loop hands every running job back to the queue (a dead
    engine is not the job's fault, so none is recorded as failed) and stops claiming,
    /readyz turns 503 with the reason, `sciserve_engine_dead` is 1, and the engine is
    restarted in this process with the same adapters, then the worker serves again.
    Why in place first: vLLM's frontend survives its core's death cleanly (its monitor
    thread marks it dead and reaps the process, and a new `AsyncLLM` starts in the same
    process), so a restart costs one engine start, while the worker keeps its HTTP
    server, metrics and pool identity, and an embedded service (which no supervisor
    would restart for its engine) heals too. Why bounded: a core that keeps dying
    (bad weights, a device fault, memory the parent leaks) is not cured by more of the
    same, so after MAX_ENGINE_RESTARTS within RESTART_WINDOW_S the worker gives up:
    `fatal` is set and, when `supervised` (the `sciserve worker` process), the process
    exits non-zero so that its supervisor (Kubernetes) starts a fresh one with backoff,
    while the queue keeps the jobs. An unsupervised (embedded) runtime instead answers
    every further job with `engine_unavailable`, as when its engine fails to start.
    """

    def __init__(
        self,
        engine: Engine,
        queue: JobQueue,
        settings: Settings,
        *,
        tools_mounted: bool = False,
        supervised: bool = False,
        telemetry: Telemetry = OFF,
    ):
        self.engine = engine
        self.telemetry = telemetry  # the jobs' traces (workers/job_spans.py)
        self.tools_mounted = tools_mounted
        self.queue = queue
        self.settings = settings
        self.supervised = supervised
        self.state: State = "starting"
        self.error: str | None = None
        self.fatal = asyncio.Event()  # the engine is dead for good: the worker gave up
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._restarts: list[float] = []  # monotonic times of in-place engine restarts
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

    def declines(self, request: SolveRequest) -> str | None:
        """Why a pool peer should run this job instead (workers/adapter_sync.py)."""
        return self.adapter_sync.declines(request) if self.adapter_sync else None

    def engine_dead(self) -> bool:
        """Whether the engine has died (only engines that can tell: `is_dead`)."""
        is_dead = getattr(self.engine, "is_dead", None)
        return bool(is_dead()) if callable(is_dead) else False

    async def run(self) -> None:
        """Load the engine, then claim jobs until stopped, restarting a dead engine."""
        try:
            await self.engine.start()
        except Exception as exc:
            log.exception("engine failed to start")
            self.state, self.error = "failed", f"The engine failed to start: {exc}"
            await self._fail_jobs_while_broken(self.error)
            return
        sync_stop = asyncio.Event()
        sync_task = None
        if self.adapter_sync is not None:
            # The whole pool set before the first job: a new worker serves the same roles.
            try:
                await self.adapter_sync.apply()
            except Exception as exc:
                log.warning("could not read the pool's adapter set at start: %s", exc)
            sync_task = asyncio.create_task(self.adapter_sync.run(sync_stop))
        pipeline = SolvePipeline.from_settings(
            self.engine, self.settings, self.tools_mounted, self.telemetry
        )
        concurrency = self.settings.worker_concurrency or default_worker_concurrency(self.engine)
        gave_up = False
        try:
            while not self._stop.is_set():
                self.state, self.error = "ready", None
                log.info("worker ready: %d jobs at once", concurrency)
                await run_worker(
                    self.queue,
                    pipeline,
                    concurrency=concurrency,
                    stop=self._stop,
                    drain_timeout_s=self.settings.drain_timeout_s,
                    engine_dead=self.engine_dead,
                    declines=self.declines,
                )
                if self._stop.is_set() or not self.engine_dead():
                    break
                if not await self._restart_engine():
                    gave_up = True
                    break
        finally:
            await pipeline.aclose()
            sync_stop.set()
            if sync_task is not None:
                with contextlib.suppress(Exception):
                    await sync_task
        if gave_up:
            self.fatal.set()
            if not self.supervised:
                await self._fail_jobs_while_broken(
                    self.error or "The engine is dead.", Outcome.engine_unavailable
                )

    async def _restart_engine(self) -> bool:
        """Restart the dead engine in place, unless it already died too often; returns
        whether the worker can serve again. Not ready meanwhile (`state`, `error`)."""
        ENGINE_DEAD.set(1)
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
        restart = getattr(self.engine, "restart", None)
        if not callable(restart):
            self.state, self.error = "failed", "The engine died and cannot be restarted in place."
            log.error(self.error)
            return False
        if len(self._restarts) >= MAX_ENGINE_RESTARTS:
            self.state = "failed"
            self.error = (
                f"The engine died {MAX_ENGINE_RESTARTS + 1} times within "
                f"{RESTART_WINDOW_S:g} s; the worker gives up."
            )
            log.error(self.error)
            return False
        self._restarts.append(now)
        self.state = "restarting"
        self.error = (
            f"The engine process died; restarting it (restart {len(self._restarts)} of at "
            f"most {MAX_ENGINE_RESTARTS} within {RESTART_WINDOW_S:g} s)."
        )
        log.error(self.error)
        try:
            await restart()
        except Exception as exc:
            log.exception("the engine could not be restarted")
            self.state, self.error = "failed", f"The engine died and did not restart: {exc}"
            return False
        ENGINE_RESTARTS.inc()
        ENGINE_DEAD.set(0)
        log.warning("the engine was restarted")
        if self.adapter_sync is not None:
            # A pool change that arrived while the engine was down failed: apply it again.
            self.adapter_sync.applied_version = -1
            try:
                await self.adapter_sync.apply()
            except Exception as exc:
                log.warning("could not re-apply the pool's adapter set: %s", exc)
        return True

    async def _fail_jobs_while_broken(
        self, reason: str, outcome: Outcome = Outcome.internal
    ) -> None:
        """Without an engine, every job gets the reason at once instead of hanging."""
        while not self._stop.is_set():
            job = await self.queue.claim(1.0)
            if job is not None:
                await self.queue.fail(job.id, reason, outcome)

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
        if self.engine_dead():  # noticed here before the claim loop's next look
            return False, "The engine process died; the worker is restarting it."
        if not await self.engine.health():
            return False, "The engine does not answer its health check."
        return True, "ready"

    # --- adapter administration (app.deps.AdapterAdmin) ---
    def _require_engine(self) -> None:
        """Adapter changes need a live engine: 503 (retry later) while it restarts."""
        if self.state in ("restarting", "failed"):
            raise EngineUnavailableError(self.error or "The engine is not serving.")

    async def load_adapter(self, body: AdapterLoad) -> AdapterInfo:
        self._require_engine()
        spec = validate_adapter(
            body.role,
            Path(body.path).expanduser(),
            body.base_model,
            body.rank,
            served_model=self.engine.model_name,
            max_lora_rank=self.settings.max_lora_rank,
            name=body.name,
        )
        await self.engine.load_adapter(spec)
        return AdapterInfo(
            role=spec.role, name=spec.name, path=str(spec.path), rank=spec.rank, loaded=True
        )

    async def unload_adapter(self, name: str) -> None:
        self._require_engine()
        await self.engine.unload_adapter(name)

    def loaded_adapters(self) -> dict[str, AdapterSpec]:
        return self.engine.adapters()

    async def list_adapters(self) -> list[AdapterInfo]:
        """Every role (loaded or on the base model), then the named adapters."""
        loaded = self.engine.adapters()
        errors = self.adapter_sync.errors if self.adapter_sync else {}
        names = [*ROLES, *sorted(set(loaded) - set(ROLES)), *sorted(set(errors) - set(loaded))]
        return [
            AdapterInfo(
                role=loaded[name].role if name in loaded else name,
                name=name,
                path=str(loaded[name].path) if name in loaded else None,
                rank=loaded[name].rank if name in loaded else None,
                loaded=name in loaded,
                error=errors.get(name),
            )
            for name in dict.fromkeys(names)
        ]
