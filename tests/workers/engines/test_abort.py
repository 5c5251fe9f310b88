"""Aborting requests on the real vLLM engine: a vote that settled stops its other
samples in the engine at once, and what they generated is still billed."""

from __future__ import annotations

import asyncio

from tests.conftest import Service
from workers.engines.base import (
    AbortableEngine,
    Completion,
    Engine,
    GenerationRequest,
    Sampling,
)


def _long(request_id: str, seed: int) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": "Count from one to a thousand, in words."}],
        sampling=Sampling(max_tokens=3000, temperature=1.0, seed=seed),
        request_id=request_id,
    )


def test_abort_stops_the_request_in_the_engine_and_returns_its_tokens(service: Service) -> None:
    engine = service.engine
    assert isinstance(engine, AbortableEngine) and isinstance(engine, Engine)

    async def go() -> tuple[Completion, Completion, float]:
        kept = asyncio.create_task(engine.generate([_long("kept", 1)]))
        aborted = asyncio.create_task(engine.generate([_long("aborted", 2)]))
        await asyncio.sleep(1.0)
        started = asyncio.get_running_loop().time()
        await engine.abort(["aborted"])
        [stopped] = await asyncio.wait_for(aborted, 30)
        waited = asyncio.get_running_loop().time() - started
        await engine.abort(["kept"])
        [other] = await asyncio.wait_for(kept, 30)
        return stopped, other, waited

    stopped, other, waited = service.call(go())
    assert stopped.finish_reasons == ["abort"], stopped.finish_reasons
    assert 0 < len(stopped.token_ids[0]) < 3000, "the aborted request's tokens are returned"
    assert stopped.texts[0], "with their text"
    assert waited < 5, "the abort took effect at once"
    assert other.finish_reasons == ["abort"]
