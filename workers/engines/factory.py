"""Build the configured engine from `Settings`: which backend, which model, which adapters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from adapters.registry import PromptStyle, load_registry, shipped_registry, trained_layout
from contract.settings import Settings
from contract.telemetry import otlp_protocol, traces_endpoint
from workers.engines.base import Engine
from workers.models.demo import demo_model_dir

# The CPU batch size measured on the 2-core box; on GPU vLLM sizes it from the device.
CPU_MAX_NUM_SEQS = 64
CPU_WORKER_CONCURRENCY = 32
# Folders above this size are "real" models; below, the tiny test model.
_REAL_MODEL_BYTES = 200 * 1024 * 1024


def resolve_model(settings: Settings) -> str:
    """`SCISERVE_MODEL`, or the prepared demo model (an error says how to prepare it)."""
    if settings.model:
        return settings.model
    return str(demo_model_dir(settings))


def adapter_registry(settings: Settings) -> Path | None:
    """The configured registry; on the demo model without one, its shipped adapters."""
    if settings.adapter_registry is not None:
        return settings.adapter_registry
    if settings.model is None and settings.shipped_adapters:
        return shipped_registry(settings.demo_model)
    return None


@dataclass(frozen=True)
class ServedLayout:
    """The prompt layout a request gets when it names none: AWL's for a question of
    one of `awl_domains`, else `default`."""

    default: PromptStyle = "sciserve"
    awl_domains: frozenset[str] = frozenset()


def served_layout(settings: Settings) -> ServedLayout:
    """SCISERVE_PROMPT_STYLE when set, for every question; else the layout the served
    policy adapter's card says it was trained on, for the domains it was trained on
    (the shipped policy learned AWL's on the four scientific domains), else "sciserve"."""
    if "prompt_style" in settings.model_fields_set:
        return ServedLayout(settings.prompt_style)
    trained = trained_layout(adapter_registry(settings))
    if trained is None:
        return ServedLayout(settings.prompt_style)
    if trained.domains is None:
        return ServedLayout(trained.style)
    awl = trained.domains if trained.style == "awl" else frozenset()
    return ServedLayout(settings.prompt_style, awl)


def _folder_bytes(path: str) -> int:
    folder = Path(path)
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def default_reserved_cores(model: str) -> int | None:
    """Measured on a 2-core CPU (notes/vllm-cpu.md): real models run 25-70% faster on
    both cores (0 reserved); the tiny model runs ~3x faster with vLLM's default."""
    return 0 if _folder_bytes(model) > _REAL_MODEL_BYTES else None


def has_cuda() -> bool:
    """Whether vLLM will run on a CUDA GPU, asked without initializing CUDA here.

    `torch.cuda.is_available()` in this (parent) process initializes CUDA, and vLLM's
    engine core started later by fork then fails with "Cannot re-initialize CUDA in
    forked subprocess". vLLM's own platform detection asks NVML instead (and knows
    that a CPU build on a GPU machine still runs on the CPU); without vLLM, NVML."""
    try:
        from vllm.platforms import current_platform
    except Exception:
        return nvml_gpu_count() > 0
    return bool(current_platform.is_cuda_alike())


def nvml_gpu_count() -> int:
    """GPUs seen by the driver through NVML (no CUDA context); 0 without NVML."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
    except Exception:
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


def default_worker_concurrency(engine: Engine) -> int:
    """Jobs one worker runs at once when SCISERVE_WORKER_CONCURRENCY is unset: 32 on CPU
    (measured), and on GPU at least the started engine's batch capacity, so the jobs in
    flight can fill every sequence slot vLLM schedules."""
    capacity_of = getattr(engine, "batch_capacity", None)
    options = getattr(engine, "options", None)
    capacity = capacity_of() if callable(capacity_of) else None
    if capacity is None or getattr(options, "device", "cpu") != "cuda":
        return CPU_WORKER_CONCURRENCY
    return max(CPU_WORKER_CONCURRENCY, int(capacity))


def cpu_bf16_native(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). Without
    it PyTorch takes a slow fallback path for bfloat16 matrices (bench/dtype.py
    measures it), so the CPU engine serves in float32. Unknown (no cpuinfo): True, as
    vLLM's own `auto` would assume."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return True
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def served_dtype(settings: Settings, gpu: bool) -> str:
    """SCISERVE_DTYPE when set; `auto` on a CPU without bfloat16 instructions is
    float32 (the model's own dtype, bfloat16 for the demo models, is slower there);
    otherwise the model's own (vLLM's `auto`)."""
    if settings.dtype != "auto" or gpu or cpu_bf16_native():
        return settings.dtype
    return "float32"


def build_engine(settings: Settings) -> Engine:
    """An unstarted engine; `await engine.start()` loads it."""
    model = resolve_model(settings)
    adapters = []
    registry = adapter_registry(settings)
    if registry is not None:
        specs = load_registry(registry, served_model=model, max_lora_rank=settings.max_lora_rank)
        adapters = list(specs.values())
    if settings.engine == "hf":
        from workers.engines.hf_engine import HfEngine

        dtype = "float32" if settings.dtype == "auto" else settings.dtype
        return HfEngine(model, adapters, dtype=dtype)
    if settings.engine == "openai":
        from workers.engines.openai_engine import OpenAIEngine

        if not settings.engine_url:
            raise ValueError("SCISERVE_ENGINE=openai needs SCISERVE_ENGINE_URL.")
        return OpenAIEngine(settings.engine_url, model, adapters)
    from workers.engines.vllm_engine import VllmEngine, VllmOptions

    reserved = settings.cpu_reserved_cores
    endpoint = traces_endpoint(os.environ)
    gpu = has_cuda()
    kv_cache_bytes = settings.kv_cache_bytes or (None if gpu else 1 << 30)
    enforce_eager = settings.enforce_eager if settings.enforce_eager is not None else not gpu
    return VllmEngine(
        VllmOptions(
            model=model,
            dtype=served_dtype(settings, gpu),
            max_model_len=settings.max_model_len,
            kv_cache_bytes=kv_cache_bytes,
            enforce_eager=enforce_eager,
            max_num_seqs=settings.max_num_seqs
            if settings.max_num_seqs is not None
            else (None if gpu else CPU_MAX_NUM_SEQS),
            enable_lora=settings.enable_lora,
            max_loras=settings.max_loras,
            max_lora_rank=settings.max_lora_rank,
            cpu_reserved_cores=None
            if gpu
            else (reserved if reserved is not None else default_reserved_cores(model)),
            device="cuda" if gpu else "cpu",
            gpu_memory_utilization=settings.gpu_memory_utilization,
            # vLLM's own request spans go where this process's do (the OTEL_* variables).
            otlp_traces_endpoint=endpoint,
            otlp_traces_protocol=otlp_protocol(os.environ) if endpoint else "grpc",
        ),
        adapters,
    )
