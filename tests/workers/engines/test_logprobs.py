"""Token log probabilities, what `strategy.auto` reads a greedy answer's confidence
from: the real vLLM engine returns one per generated token (also when streaming), the
transformers reference engine agrees with it on the same greedy tokens, and a request
that does not ask gets none."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from tests.conftest import Service
from workers.engines.base import Completion, GenerationRequest, Sampling

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


def _request(logprobs: bool, **extra: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=MESSAGES, sampling=Sampling(max_tokens=16, logprobs=logprobs), **extra
    )


def test_vllm_returns_one_logprob_per_generated_token(service: Service) -> None:
    pieces: list[str] = []

    async def hear(piece: str) -> None:
        pieces.append(piece)

    plain, streamed, without = service.call(
        service.engine.generate([_request(True), _request(True, on_text=hear), _request(False)])
    )
    for completion in (plain, streamed):
        assert completion.logprobs is not None
        [values] = completion.logprobs
        assert len(values) == len(completion.token_ids[0]) == 16
        assert all(v <= 0 and math.isfinite(v) for v in values)
    assert plain.logprobs == streamed.logprobs or all(
        abs(a - b) < 1e-3
        for a, b in zip(plain.logprobs[0], streamed.logprobs[0], strict=True)  # type: ignore[index]
    )
    assert without.logprobs is None


def test_transformers_engine_agrees_on_the_greedy_tokens(
    service: Service, hf_reference: tuple[Any, asyncio.AbstractEventLoop]
) -> None:
    hf, loop = hf_reference
    [reference] = loop.run_until_complete(hf.generate([_request(True)]))
    [served] = service.call(service.engine.generate([_request(True)]))
    assert isinstance(reference, Completion) and reference.logprobs is not None
    assert served.logprobs is not None
    same = 0
    for ref_id, id_, ref_lp, lp in zip(
        reference.token_ids[0],
        served.token_ids[0],
        reference.logprobs[0],
        served.logprobs[0],
        strict=False,
    ):
        if ref_id != id_:
            break  # float differences may fork the greedy path; compare the shared prefix
        assert abs(ref_lp - lp) < 0.05, (ref_lp, lp)
        same += 1
    assert same >= 4
