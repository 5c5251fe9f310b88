"""A worker's side of the pool-wide adapter set (jobqueue/adapter_set.py).

Before the worker takes its first job it applies the whole desired set, so a new or
restarted worker serves the same roles as the rest of the pool; afterwards it polls the
set's version and applies each change. Every role's state, with the reason of a failed
load, goes into the worker's report, which the gateway's `GET /admin/adapters` shows.

A worker whose load failed is out of step with the pool: while another live worker
serves that adapter as the pool asked, this one declines the jobs that need it (the
loop hands them back for the peer to claim). When no worker could load it, every
worker keeps serving with what it has, so a bad path never takes the pool down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Protocol

from prometheus_client import Gauge

from adapters.registry import ROLES, AdapterSpec
from contract.schemas import (
    AdapterInfo,
    AdapterLoad,
    SolveRequest,
    WorkerAdapterReport,
    WorkerAdapterState,
)
from jobqueue.adapter_set import REPORT_TTL_S, AdapterSet

log = logging.getLogger(__name__)

ADAPTERS_LOADED = Gauge(
    "sciserve_worker_adapters_loaded", "LoRA adapters this worker's engine has loaded."
)
ADAPTER_FAILURES = Gauge(
    "sciserve_worker_adapter_failures",
    "Roles whose last pool-wide adapter change failed on this worker.",
)
POLL_S = 1.0
REPORT_EVERY_S = REPORT_TTL_S / 3


class AdapterHost(Protocol):
    """What the sync needs from the worker: load/unload through the same validation
    as the worker's own /admin/adapters, and the engine's loaded adapters."""

    async def load_adapter(self, body: AdapterLoad) -> AdapterInfo: ...

    async def unload_adapter(self, name: str) -> None: ...

    def loaded_adapters(self) -> dict[str, AdapterSpec]: ...


def _same(spec: AdapterSpec, load: AdapterLoad) -> bool:
    return spec.path == Path(load.path).expanduser().resolve() and spec.rank == load.rank


class AdapterSync:
    """Keeps one worker's adapters equal to the pool's desired set."""

    def __init__(self, host: AdapterHost, adapter_set: AdapterSet, worker: str):
        self.host = host
        self.adapter_set = adapter_set
        self.worker = worker
        self.applied_version = -1
        self.errors: dict[str, str] = {}
        self.served_elsewhere: set[str] = set()  # failed here, loaded by a live peer

    async def apply(self) -> bool:
        """Apply the desired set if its version moved; returns whether it did."""
        version, desired = await self.adapter_set.desired()
        if version == self.applied_version:
            return False
        for name, load in desired.items():
            current = self.host.loaded_adapters().get(name)
            try:
                if load is None:
                    if current is not None:
                        await self.host.unload_adapter(name)
                elif current is None or not _same(current, load):
                    await self.host.load_adapter(load)
                self.errors.pop(name, None)
            except Exception as exc:  # any failure is reported, the worker keeps serving
                log.warning("adapter %s not applied: %s", name, exc)
                self.errors[name] = str(exc)
        self.applied_version = version
        await self.publish()
        return True

    async def refresh_peers(self) -> None:
        """Which of this worker's failed adapters another live worker has loaded at the
        same pool version; read only while something failed here."""
        if not self.errors:
            self.served_elsewhere = set()
            return
        served: set[str] = set()
        for report in await self.adapter_set.reports():
            if report.worker == self.worker or report.version != self.applied_version:
                continue
            served |= {
                name
                for name, state in report.roles.items()
                if name in self.errors and state.loaded and state.error is None
            }
        self.served_elsewhere = served

    def declines(self, request: SolveRequest) -> str | None:
        """Why this worker should leave the job to a peer, or None to run it."""
        for name in sorted(request.adapter_names() & self.served_elsewhere):
            error = self.errors.get(name)
            if error is not None:
                return f"adapter {name!r} failed to load on this worker ({error})"
        return None

    def report(self) -> WorkerAdapterReport:
        loaded = self.host.loaded_adapters()
        ADAPTER_FAILURES.set(len(self.errors))
        return WorkerAdapterReport(
            worker=self.worker,
            version=self.applied_version,
            reported_at=time.time(),
            roles={
                name: WorkerAdapterState(
                    worker=self.worker,
                    loaded=name in loaded,
                    path=str(loaded[name].path) if name in loaded else None,
                    rank=loaded[name].rank if name in loaded else None,
                    error=self.errors.get(name),
                )
                for name in dict.fromkeys([*ROLES, *loaded, *self.errors])
            },
        )

    async def publish(self) -> None:
        await self.adapter_set.report(self.report())

    async def run(self, stop: asyncio.Event) -> None:
        """Poll for changes and refresh the report until `stop`; Redis trouble is logged
        and retried, never fatal to the worker."""
        last_report = time.monotonic()
        while not stop.is_set():
            try:
                changed = await self.apply()
                if not changed and time.monotonic() - last_report >= REPORT_EVERY_S:
                    await self.publish()
                    changed = True
                if changed:
                    last_report = time.monotonic()
                await self.refresh_peers()
            except Exception as exc:
                log.warning("pool adapter sync failed, retrying: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
        with contextlib.suppress(Exception):
            await self.adapter_set.withdraw(self.worker)
