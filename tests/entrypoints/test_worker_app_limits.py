"""A worker process's own app (`create_worker_app`: /admin/adapters takes a body) has
the gateway's body-size limit: an oversized body is a 413 before any route reads it.

Over httpx's ASGI transport to the real worker app, with a real `WorkerRuntime` on the
in-process queue; the engine is tests/workers/test_loop.py's `CountingEngine` double
(no job runs here).
"""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from contract.settings import Settings
from entrypoints.gateway import create_worker_app
from jobqueue.factory import build_queue
from tests.conftest import ADMIN_KEY
from tests.workers.test_loop import CountingEngine
from workers.runtime import WorkerRuntime


def test_the_worker_app_refuses_an_oversized_body() -> None:
    settings = Settings(
        model="test-double", mount_tools=False, admin_key=SecretStr(ADMIN_KEY), max_body_bytes=2048
    )

    async def post(size: int) -> httpx.Response:
        queue = build_queue(settings)
        app = create_worker_app(settings, WorkerRuntime(CountingEngine(), queue, settings))
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
                return await client.post(
                    "/admin/adapters",
                    json={"role": "policy", "path": "x" * size},
                    headers={"X-Admin-Key": ADMIN_KEY},
                )
        finally:
            await queue.close()

    big = asyncio.run(post(4096))
    assert big.status_code == 413, big.text
    assert "2048 bytes" in big.json()["detail"]
    small = asyncio.run(post(16))
    assert small.status_code != 413  # within the limit the route answers (here: a 4xx)
