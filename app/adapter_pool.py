"""The gateway's adapter administration over a worker pool (distributed mode).

A change goes into the pool-wide set in Redis (jobqueue/adapter_set.py); the gateway
then waits, bounded, until every live worker has reported applying it, so the answer
already says which workers loaded the adapter and why any could not. Workers that
start later load the whole set before their first job.
"""

from __future__ import annotations

import asyncio
import time

from adapters.registry import ROLES
from contract.schemas import AdapterInfo, AdapterLoad, WorkerAdapterReport, WorkerAdapterState
from jobqueue.adapter_set import AdapterSet

APPLY_TIMEOUT_S = 30.0
POLL_S = 0.2


class PoolAdapterAdmin:
    """`AdapterAdmin` (app/deps.py) for the whole pool."""

    def __init__(self, adapter_set: AdapterSet, apply_timeout_s: float = APPLY_TIMEOUT_S):
        self.adapter_set = adapter_set
        self.apply_timeout_s = apply_timeout_s

    async def load_adapter(self, body: AdapterLoad) -> AdapterInfo:
        version = await self.adapter_set.put(body)
        await self._wait_applied(version)
        return next(a for a in await self.list_adapters() if a.name == body.key)

    async def unload_adapter(self, name: str) -> None:
        await self._wait_applied(await self.adapter_set.remove(name))

    async def _wait_applied(self, version: int) -> list[WorkerAdapterReport]:
        """Until every live worker has applied `version` (or the timeout passes)."""
        deadline = time.monotonic() + self.apply_timeout_s
        while True:
            reports = await self.adapter_set.reports()
            if all(r.version >= version for r in reports) or time.monotonic() >= deadline:
                return reports
            await asyncio.sleep(POLL_S)

    async def list_adapters(self) -> list[AdapterInfo]:
        _, desired = await self.adapter_set.desired()
        reports = await self.adapter_set.reports()
        named = {name for name, load in desired.items() if load is not None} - set(ROLES)
        return [
            _adapter_info(name, desired, reports)
            for name in dict.fromkeys([*ROLES, *sorted(named)])
        ]


def _adapter_info(
    name: str, desired: dict[str, AdapterLoad | None], reports: list[WorkerAdapterReport]
) -> AdapterInfo:
    """One adapter (a role's own, named after it, or a named one) across the pool."""
    states = [
        r.roles.get(name) or WorkerAdapterState(worker=r.worker, loaded=False) for r in reports
    ]
    failures = [f"{s.worker}: {s.error}" for s in states if s.error]
    everywhere = bool(states) and all(s.loaded for s in states) and not failures
    if name in desired:
        load = desired[name]
        return AdapterInfo(
            role=load.role if load else name,
            name=name,
            path=load.path if load else None,
            rank=load.rank if load else None,
            loaded=load is not None and everywhere,
            error="; ".join(failures) or None,
            workers=states,
        )
    # Never changed through the pool: whatever the workers' own registries give.
    first = next((s for s in states if s.loaded), None)
    return AdapterInfo(
        role=name,
        name=name,
        path=first.path if first else None,
        rank=first.rank if first else None,
        loaded=everywhere,
        error="; ".join(failures) or None,
        workers=states,
    )
