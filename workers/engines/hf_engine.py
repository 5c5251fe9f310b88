"""transformers + peft reference engine: slow, simple, and the yardstick for parity.

It exists to check that vLLM's tokens (base and every adapter) are the tokens the
model really produces; it also serves small models where vLLM is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from adapters.registry import AdapterSpec
from workers.engines.base import (
    AdapterSlots,
    Completion,
    GenerationRequest,
    publish_adapter_gauges,
    record_usage,
    render_prompt_ids,
)


class HfEngine:
    """`Engine` over `transformers` generate, adapters switched with peft."""

    provider_name = "transformers"  # gen_ai.provider.name of its spans

    def __init__(self, model: str, adapters: Sequence[AdapterSpec] = (), dtype: str = "float32"):
        self.model_name = model
        self._dtype = dtype
        self._initial_adapters = list(adapters)
        self._slots = AdapterSlots(max_loras=None)
        self._model: Any = None
        self._tokenizer: Any = None
        # peft's active adapter is model state: one request at a time.
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = getattr(torch, self._dtype) if self._dtype != "auto" else "auto"
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self._model = await asyncio.to_thread(
            AutoModelForCausalLM.from_pretrained, self.model_name, dtype=dtype
        )
        self._model.eval()
        for spec in self._initial_adapters:
            await self.load_adapter(spec)
        publish_adapter_gauges(self._slots.specs())

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = []
        async with self._lock:
            for request in requests:
                completions.append(await asyncio.to_thread(self._generate_one, request))
        record_usage(completions)
        return completions

    def _generate_one(self, request: GenerationRequest) -> Completion:
        import torch

        prompt_ids = render_prompt_ids(self._tokenizer, request)
        s = request.sampling
        kwargs: dict[str, Any] = {"max_new_tokens": s.max_tokens, "num_return_sequences": request.n}
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
            if s.seed is not None:
                torch.manual_seed(s.seed)
        else:
            kwargs.update(do_sample=False)
        entry = self._slots.get(request.role)
        if entry is not None:
            self._model.set_adapter(entry[0].name)
            adapter_context: Any = contextlib.nullcontext()
        elif hasattr(self._model, "disable_adapter"):
            adapter_context = self._model.disable_adapter()
        else:
            adapter_context = contextlib.nullcontext()
        eos = self._tokenizer.eos_token_id
        if s.logprobs:
            kwargs.update(return_dict_in_generate=True, output_scores=True)
        with torch.no_grad(), adapter_context:
            generated = self._model.generate(
                torch.tensor([prompt_ids]),
                attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                eos_token_id=eos,
                pad_token_id=self._tokenizer.pad_token_id or eos,
                **kwargs,
            )
        out = generated.sequences if s.logprobs else generated
        token_ids, finish = [], []
        for row in out[:, len(prompt_ids) :].tolist():
            if eos in row:
                row = row[: row.index(eos) + 1]
                finish.append("stop")
            else:
                finish.append("length")
            token_ids.append(row)
        texts = [self._tokenizer.decode(ids, skip_special_tokens=True) for ids in token_ids]
        logprobs = None
        if s.logprobs:  # each step's scores, as sampled (after temperature), per sequence
            steps = self._model.compute_transition_scores(
                generated.sequences, generated.scores, normalize_logits=True
            ).tolist()
            logprobs = [row[: len(ids)] for row, ids in zip(steps, token_ids, strict=True)]
        return Completion(
            texts=texts,
            token_ids=token_ids,
            prompt_tokens=len(prompt_ids),
            finish_reasons=list(finish),
            logprobs=logprobs,
        )

    async def load_adapter(self, spec: AdapterSpec) -> None:
        from peft import PeftModel

        async with self._lock:
            if self._slots.get(spec.name) is not None:
                self._model.delete_adapter(spec.name)
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(str(spec.path), adapter_name=spec.name)
            else:
                self._model = PeftModel.from_pretrained(
                    self._model, str(spec.path), adapter_name=spec.name
                )
            self._model.eval()
            self._slots.add(spec, self._slots.next_id())

    async def unload_adapter(self, name: str) -> None:
        """Unload an adapter; a role whose own it was runs on the base model. peft keeps
        a deleted adapter as the active one, so another adapter is made active, or, with
        none left, the LoRA layers go and the plain base model stays (a PeftModel without
        adapters fails every call with KeyError)."""
        async with self._lock:
            self._slots.remove(name)
            self._model.delete_adapter(name)
            remaining = list(self._slots.specs())
            if remaining:
                self._model.set_adapter(remaining[0])
            else:
                self._model = self._model.unload()
                self._model.eval()

    def adapters(self) -> dict[str, AdapterSpec]:
        return self._slots.specs()

    async def health(self) -> bool:
        return self._model is not None

    def tokenizer(self) -> Any:
        return self._tokenizer

    async def close(self) -> None:
        self._model = None
