"""vLLM (in-process, CPU, LoRA) against the transformers+peft reference, token for token."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Service
from workers.engines.base import GenerationRequest, Sampling

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


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "base")
def test_vllm_tokens_equal_reference_tokens(service: Service, hf_reference, role) -> None:
    hf, loop = hf_reference
    got = service.call(service.engine.generate(_requests(role)))
    want = loop.run_until_complete(hf.generate(_requests(role)))
    for g, w in zip(got, want, strict=True):
        assert g.prompt_tokens == w.prompt_tokens
        assert g.token_ids[0] == w.token_ids[0]
        assert len(g.token_ids[0]) > 0


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
            assert [c.token_ids for c in batch] == [c.token_ids for c in base_only]


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
