"""Unloading any set of adapters leaves every role served: a role without an adapter
runs on the base model, on the transformers+peft reference engine too (it used to
fail every later call with `KeyError: 'truster'`)."""

from __future__ import annotations

import asyncio

from adapters.registry import load_registry
from workers.engines.base import GenerationRequest, Sampling
from workers.engines.hf_engine import HfEngine
from workers.models.tiny import TinyModel

ROLES = ("policy", "asker", "truster")


def _request(role: str | None) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": "What is 2 + 2?"}],
        role=role,
        sampling=Sampling(max_tokens=6),
    )


def test_every_role_is_served_after_any_unload(tiny_model: TinyModel) -> None:
    specs = load_registry(
        tiny_model.registry, served_model=str(tiny_model.model_dir), max_lora_rank=16
    )

    async def run() -> None:
        engine = HfEngine(str(tiny_model.model_dir), list(specs.values()), dtype="float32")
        await engine.start()
        [base] = await engine.generate([_request(None)])
        [with_policy] = await engine.generate([_request("policy")])
        for unloaded in ("truster", "policy", "asker"):  # the active one, then the rest
            await engine.unload_adapter(unloaded)
            served = await engine.generate([_request(role) for role in (None, *ROLES)])
            assert all(c.texts[0] is not None for c in served)
        assert engine.adapters() == {}
        # With every adapter gone, every role is the base model, token for token.
        final = await engine.generate([_request(role) for role in ROLES])
        assert all(c.token_ids == base.token_ids for c in final)
        await engine.load_adapter(specs["policy"])
        [again] = await engine.generate([_request("policy")])
        assert again.token_ids == with_policy.token_ids
        await engine.close()

    asyncio.run(run())
