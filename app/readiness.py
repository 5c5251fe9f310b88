"""What `/readyz` checks: the queue's store (Redis, when used) and, where this process
runs one, the worker's engine."""

from __future__ import annotations

from app.deps import Readiness
from jobqueue.protocol import JobQueue


class ServiceReadiness:
    def __init__(self, queue: JobQueue, worker: Readiness | None):
        self.queue = queue
        self.worker = worker

    async def readiness(self) -> tuple[bool, str]:
        ok, reason = await self.queue.health()
        if not ok:
            return False, reason
        if self.worker is not None:
            return await self.worker.readiness()
        return True, "ready"
