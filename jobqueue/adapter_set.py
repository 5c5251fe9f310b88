"""The pool-wide adapter set in Redis: what every worker should serve, and what each
worker reports it serves.

The gateway writes the desired set (`POST/DELETE /admin/adapters`); each worker polls
the set's version, applies changes as they come and the whole set when it starts, and
publishes its own report, which expires when the worker is gone. Keys (under the
deployment prefix):

- `adapters:desired`  hash name → JSON `{"load": AdapterLoad}` or `{"load": null}` (unload);
  a role's own adapter is named after the role
- `adapters:version`  counter, bumped with every change
- `adapters:worker:NAME`  the worker's `WorkerAdapterReport`, with a TTL
"""

from __future__ import annotations

import json
from typing import Any

from contract.schemas import AdapterLoad, WorkerAdapterReport

# A worker refreshes its report well within this; a dead worker's report lapses.
REPORT_TTL_S = 15


class AdapterSet:
    """Desired adapters and worker reports for one deployment prefix."""

    def __init__(self, redis: Any, prefix: str):
        self.redis = redis
        self.prefix = prefix

    @property
    def _desired(self) -> str:
        return f"{self.prefix}:adapters:desired"

    @property
    def _version(self) -> str:
        return f"{self.prefix}:adapters:version"

    def _report_key(self, worker: str) -> str:
        return f"{self.prefix}:adapters:worker:{worker}"

    async def _change(self, role: str, load: AdapterLoad | None) -> int:
        value = json.dumps({"load": None if load is None else load.model_dump()})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._desired, role, value)
            pipe.incr(self._version)
            _, version = await pipe.execute()
        return int(version)

    async def put(self, load: AdapterLoad) -> int:
        """Every worker loads this adapter under its name (the role's own: the role);
        returns the new version."""
        return await self._change(load.key, load)

    async def remove(self, name: str) -> int:
        """Every worker unloads the adapter (a role whose own it was falls back to the
        base model)."""
        return await self._change(name, None)

    async def version(self) -> int:
        return int(await self.redis.get(self._version) or 0)

    async def desired(self) -> tuple[int, dict[str, AdapterLoad | None]]:
        """The version and role → adapter (None: unloaded). Roles never set are absent:
        a worker keeps what its own registry file gives them."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self._version)
            pipe.hgetall(self._desired)
            version, raw = await pipe.execute()
        roles: dict[str, AdapterLoad | None] = {}
        for role, value in raw.items():
            load = json.loads(value)["load"]
            roles[role] = None if load is None else AdapterLoad.model_validate(load)
        return int(version or 0), roles

    async def report(self, report: WorkerAdapterReport) -> None:
        await self.redis.set(
            self._report_key(report.worker), report.model_dump_json(), ex=REPORT_TTL_S
        )

    async def withdraw(self, worker: str) -> None:
        """A stopping worker takes its report away at once."""
        await self.redis.delete(self._report_key(worker))

    async def reports(self) -> list[WorkerAdapterReport]:
        """Every live worker's report, by worker name."""
        keys = [key async for key in self.redis.scan_iter(match=self._report_key("*"))]
        if not keys:
            return []
        values = await self.redis.mget(keys)
        reports = [WorkerAdapterReport.model_validate_json(v) for v in values if v is not None]
        return sorted(reports, key=lambda r: r.worker)
