"""The gateway holds 512 concurrent `/solve` connections without a connection error.

Served by the embedded app over real HTTP (uvicorn, real port) with the in-process queue
and the real worker loop and pipeline. Mock: the engine is `ScriptedEngine`
(tests/doubles.py), a fast double that answers at once, so the load lands on the
gateway's path (connections, one waiter per job) and not on a 2-core vLLM.
"""

from __future__ import annotations

import asyncio
import gc
import resource
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entrypoints.embedded import EmbeddedServer, free_port
from entrypoints.limits import raise_open_file_limit
from tests.conftest import tiny_settings
from tests.doubles import ScriptedEngine
from workers.models.tiny import TinyModel

CONCURRENT = 512


@pytest.fixture(scope="module")
def tokenizer(tiny_model: TinyModel) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


@pytest.fixture()
def common_fd_limit() -> Iterator[None]:
    """The usual default soft limit of 1024 open files, as on a stock server, restored
    afterwards: the server then holds the connections only if the gateway's own
    start-up step raises it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _tasks_on(server: EmbeddedServer) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return server.call(count())


def test_512_concurrent_solve_requests_all_answer(
    tiny_model: TinyModel, tokenizer: Any, common_fd_limit: None
) -> None:
    # What `sciserve gateway|serve|worker` do at start-up (entrypoints/limits.py). Client
    # and server share this process here, so both ends of every connection count.
    assert raise_open_file_limit() >= 4 * CONCURRENT
    settings = tiny_settings(
        tiny_model, port=free_port(), mount_tools=False, queue_max_depth=4 * CONCURRENT
    )
    engine = ScriptedEngine(tokenizer, [("", "The answer is \\boxed{4}.")])

    async def burst(url: str) -> list[httpx.Response | BaseException]:
        limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            calls = [
                client.post("/solve", json={"problem": f"What is {i} + 4 - {i}?"})
                for i in range(CONCURRENT)
            ]
            return await asyncio.gather(*calls, return_exceptions=True)

    with EmbeddedServer(settings, ready_timeout_s=60, engine=engine) as server:
        before = _tasks_on(server)
        results = asyncio.run(burst(server.url))
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"{len(errors)} connection errors, first: {errors[0]!r}"
        statuses = [r.status_code for r in results if isinstance(r, httpx.Response)]
        assert statuses == [200] * CONCURRENT
        assert {r.json()["answer"] for r in results if isinstance(r, httpx.Response)} == {"4"}
        gc.collect()
        # No task per request outlives it: the server's loop is back to where it began
        # (a little slack for a connection task still closing).
        assert _tasks_on(server) <= before + 4
