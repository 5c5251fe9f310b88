"""vLLM (in-process, LoRA) against the transformers+peft reference (float32, CPU).

On CPU (float32) vLLM's greedy tokens equal the reference's token for token. On CUDA
vLLM runs bfloat16 (its LoRA kernels take nothing else) and greedy outputs drift apart
after some tokens, so there the check is on the first token: vLLM's greedy choice must
be within `GPU_FIRST_TOKEN_TOLERANCE` nats of the reference's best log-probability.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.conftest import TEST_DEVICE, Service
from workers.engines.base import GenerationRequest, Sampling, render_prompt_ids

# bfloat16 keeps ~3 significant digits; on the tiny model's logits that is a few
# hundredths of a nat. A wrong adapter or template moves the choice by far more.
GPU_FIRST_TOKEN_TOLERANCE = 0.1
# On CUDA, batch composition changes bfloat16 rounding: compare this many tokens.
GPU_PREFIX_TOKENS = 4

PROMPTS = [
    "Natalia sold clips to 48 of her friends in April. How many in May?",
    "Solve for x: 3x + 5 = 20.",
]
ROLES = [None, "policy", "asker", "truster"]


def _requests(role: str | None, max_tokens: int = 20) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": p}],
            role=role,
            sampling=Sampling(max_tokens=max_tokens),
        )
        for p in PROMPTS
    ]


def _compared(tokens: list[int]) -> list[int]:
    """What two runs must share: all tokens on CPU, a prefix on CUDA."""
    return tokens[:GPU_PREFIX_TOKENS] if TEST_DEVICE == "cuda" else tokens


def _reference_first_logprobs(hf: Any, request: GenerationRequest) -> Any:
    """The reference model's log-probabilities of the first generated token, under the
    request's adapter (the same adapter selection as HfEngine.generate)."""
    import torch

    ids = render_prompt_ids(hf.tokenizer(), request)
    model = hf._model
    entry = hf._slots.get(request.role)
    context: Any = contextlib.nullcontext()
    if entry is not None:
        model.set_adapter(entry[0].role)
    elif hasattr(model, "disable_adapter"):
        context = model.disable_adapter()
    with torch.no_grad(), context:
        logits = model(torch.tensor([ids])).logits[0, -1].float()
    return torch.log_softmax(logits, dim=-1)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "base")
def test_vllm_tokens_equal_reference_tokens(service: Service, hf_reference, role) -> None:
    hf, loop = hf_reference
    got = service.call(service.engine.generate(_requests(role)))
    want = loop.run_until_complete(hf.generate(_requests(role)))
    for g, w, request in zip(got, want, _requests(role), strict=True):
        assert g.prompt_tokens == w.prompt_tokens
        assert len(g.token_ids[0]) > 0
        if TEST_DEVICE == "cuda":
            logprobs = _reference_first_logprobs(hf, request)
            chosen = float(logprobs[g.token_ids[0][0]])
            best = float(logprobs.max())
            assert chosen >= best - GPU_FIRST_TOKEN_TOLERANCE, (chosen, best)
        else:
            assert g.token_ids[0] == w.token_ids[0]


def test_adapters_change_the_output(service: Service) -> None:
    """Guards the parity test: if adapters were no-ops, parity would prove little."""
    outputs = [
        service.call(service.engine.generate(_requests(role)))[0].token_ids[0] for role in ROLES
    ]
    assert len({tuple(o) for o in outputs}) == len(ROLES)


def test_mixed_batch_base_output_equals_base_only_run(service: Service) -> None:
    """vLLM CPU LoRA slot -1 bug: in a mixed batch the base request must stay base."""
    base_only = service.call(service.engine.generate(_requests(None)))

    async def mixed() -> list:
        batches = [service.engine.generate(_requests(role)) for role in ROLES * 2]
        return await asyncio.gather(*batches)

    results = service.call(mixed())
    for role, batch in zip(ROLES * 2, results, strict=True):
        if role is None:
            got = [_compared(c.token_ids[0]) for c in batch]
            assert got == [_compared(c.token_ids[0]) for c in base_only]


def test_n_samples_come_back_complete(service: Service) -> None:
    """Every one of the n samples is returned, also when several n>1 requests share a batch."""
    requests = [
        GenerationRequest(
            prompt=f"The answer is {i}",
            sampling=Sampling(max_tokens=16, temperature=1.0, seed=i),
            n=6,
        )
        for i in range(4)
    ]
    completions = service.call(service.engine.generate(requests))
    for completion in completions:
        assert len(completion.texts) == len(completion.token_ids) == 6
        assert len({tuple(ids) for ids in completion.token_ids}) > 1
        assert completion.completion_tokens == sum(len(ids) for ids in completion.token_ids)
