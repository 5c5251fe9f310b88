"""A remote engine: an existing OpenAI-compatible `vllm serve`, reached over HTTP.

Prompts are rendered to token ids here, with the same chat template as the other
engines, and sent to `/v1/completions` as ids, so token counts and parity hold.
Adapters are vLLM's runtime LoRA modules, named as ours are (the server needs
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True for load/unload).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from adapters.registry import AdapterSpec
from contract.errors import AdapterError, EngineUnavailableError
from workers.engines.base import (
    AdapterSlots,
    Completion,
    GenerationRequest,
    publish_adapter_gauges,
    record_usage,
    render_prompt_ids,
)

# Only failures to reach the server are retried; an HTTP error answer is final.
_retry_connect = retry(
    retry=retry_if_exception_type((httpx.ConnectError, httpx.ConnectTimeout)),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)


class OpenAIEngine:
    """`Engine` over an OpenAI-compatible completions endpoint."""

    provider_name = "openai"  # gen_ai.provider.name of its spans: the API it speaks

    def __init__(
        self,
        base_url: str,
        model: str,
        adapters: Sequence[AdapterSpec] = (),
        *,
        timeout_s: float = 600.0,
        max_loras: int | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self._initial_adapters = list(adapters)
        self._slots = AdapterSlots(max_loras)
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._served_name: str | None = None
        self._tokenizer: Any = None

    @_retry_connect
    async def _post(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return await self._client.post(path, json=body, headers=dict(headers or {}))

    async def start(self) -> None:
        from transformers import AutoTokenizer

        try:
            response = await _retry_connect(self._client.get)("/v1/models")
        except httpx.TransportError as exc:
            raise EngineUnavailableError(
                f"The remote engine at {self.base_url} is unreachable: {exc or type(exc).__name__}"
            ) from exc
        response.raise_for_status()
        models = [m["id"] for m in response.json()["data"] if m.get("parent") is None]
        if not models:
            raise RuntimeError(f"{self.base_url} serves no base model.")
        self._served_name = models[0]
        self._tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, self.model_name)
        for spec in self._initial_adapters:
            await self.load_adapter(spec)
        publish_adapter_gauges(self._slots.specs())

    def _model_for(self, role: str | None) -> str:
        entry = self._slots.get(role)
        if entry is None:
            assert self._served_name is not None, "engine not started"
            return self._served_name
        return entry[0].name

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = list(await asyncio.gather(*(self._generate_one(r) for r in requests)))
        record_usage(completions)
        return completions

    async def _generate_one(self, request: GenerationRequest) -> Completion:
        prompt_ids = render_prompt_ids(self._tokenizer, request)
        s = request.sampling
        body: dict[str, Any] = {
            "model": self._model_for(request.role),
            "prompt": prompt_ids,
            "n": request.n,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "return_token_ids": True,
            "skip_special_tokens": True,
        }
        if s.seed is not None:
            body["seed"] = s.seed
        if s.logprobs:
            body["logprobs"] = 0  # the sampled token's own log probability
        if s.stop:
            body["stop"] = list(s.stop)
        if request.on_text is not None and request.n == 1:
            return await self._generate_streaming(request, body, len(prompt_ids))
        try:
            # The engine-call span's traceparent: `vllm serve` continues it.
            response = await self._post("/v1/completions", body, request.trace_headers)
        except httpx.TransportError as exc:
            raise EngineUnavailableError(
                f"The remote engine at {self.base_url} is unreachable: {exc or type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise RuntimeError(
                f"Remote engine answered {response.status_code}: {response.text[:500]}"
            )
        choices = sorted(response.json()["choices"], key=lambda c: c["index"])
        return Completion(
            texts=[c["text"] for c in choices],
            token_ids=[list(c.get("token_ids") or []) for c in choices],
            prompt_tokens=len(prompt_ids),
            finish_reasons=[c.get("finish_reason") for c in choices],
            logprobs=[_token_logprobs(c) for c in choices] if s.logprobs else None,
        )

    async def _generate_streaming(
        self, request: GenerationRequest, body: dict[str, Any], prompt_tokens: int
    ) -> Completion:
        """One sample streamed from the server (SSE), each text piece handed to
        `request.on_text` as it arrives, so a client's first token is the server's."""
        assert request.on_text is not None
        texts: list[str] = []
        token_ids: list[int] = []
        logprobs: list[float] = []
        finish_reason: str | None = None
        try:
            async with self._client.stream(
                "POST",
                "/v1/completions",
                json={**body, "stream": True},
                headers=dict(request.trace_headers or {}),
            ) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")
                    raise RuntimeError(
                        f"Remote engine answered {response.status_code}: {detail[:500]}"
                    )
                async for line in response.aiter_lines():
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    for choice in json.loads(line[5:]).get("choices", []):
                        piece = choice.get("text") or ""
                        token_ids.extend(choice.get("token_ids") or [])
                        logprobs.extend(_token_logprobs(choice))
                        finish_reason = choice.get("finish_reason") or finish_reason
                        if piece:
                            texts.append(piece)
                            await request.on_text(piece)
        except httpx.TransportError as exc:
            raise EngineUnavailableError(
                f"The remote engine at {self.base_url} is unreachable: {exc or type(exc).__name__}"
            ) from exc
        text = "".join(texts)
        if not token_ids and text:  # a server that does not stream token ids
            token_ids = list(self._tokenizer.encode(text, add_special_tokens=False))
        return Completion(
            texts=[text],
            token_ids=[token_ids],
            prompt_tokens=prompt_tokens,
            finish_reasons=[finish_reason],
            logprobs=[logprobs] if "logprobs" in body else None,
        )

    async def load_adapter(self, spec: AdapterSpec) -> None:
        self._slots.check_room(spec.name)
        if self._slots.get(spec.name) is not None:
            await self.unload_adapter(spec.name)
        response = await self._post(
            "/v1/load_lora_adapter", {"lora_name": spec.name, "lora_path": str(spec.path)}
        )
        if response.status_code >= 400:
            raise AdapterError(
                f"The remote engine refused adapter {spec.path}: {response.text[:300]}"
            )
        self._slots.add(spec, self._slots.next_id())

    async def unload_adapter(self, name: str) -> None:
        self._slots.remove(name)
        await self._post("/v1/unload_lora_adapter", {"lora_name": name})

    def adapters(self) -> dict[str, AdapterSpec]:
        return self._slots.specs()

    async def health(self) -> bool:
        try:
            response = await self._client.get("/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def tokenizer(self) -> Any:
        return self._tokenizer

    async def close(self) -> None:
        await self._client.aclose()


def _token_logprobs(choice: dict[str, Any]) -> list[float]:
    """The sampled tokens' log probabilities of one completions choice (the OpenAI
    completions format: `logprobs.token_logprobs`), or [] when the server sent none."""
    logprobs = choice.get("logprobs") or {}
    return [float(x) for x in logprobs.get("token_logprobs") or [] if x is not None]
