"""Build the configured engine from `Settings`: which backend, which model, which adapters."""

from __future__ import annotations

from pathlib import Path

from adapters.registry import load_registry
from contract.settings import Settings
from workers.engines.base import Engine
from workers.models.demo import demo_model_dir

# Folders above this size are "real" models; below, the tiny test model.
_REAL_MODEL_BYTES = 200 * 1024 * 1024


def resolve_model(settings: Settings) -> str:
    """`SCISERVE_MODEL`, or the prepared demo model (an error says how to prepare it)."""
    if settings.model:
        return settings.model
    return str(demo_model_dir(settings))


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
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def build_engine(settings: Settings) -> Engine:
    """An unstarted engine; `await engine.start()` loads it."""
    model = resolve_model(settings)
    adapters = []
    if settings.adapter_registry is not None:
        adapters = list(
            load_registry(
                settings.adapter_registry, served_model=model, max_lora_rank=settings.max_lora_rank
            ).values()
        )
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
    gpu = has_cuda()
    kv_cache_bytes = settings.kv_cache_bytes or (None if gpu else 1 << 30)
    enforce_eager = settings.enforce_eager if settings.enforce_eager is not None else not gpu
    return VllmEngine(
        VllmOptions(
            model=model,
            dtype=settings.dtype,
            max_model_len=settings.max_model_len,
            kv_cache_bytes=kv_cache_bytes,
            enforce_eager=enforce_eager,
            max_num_seqs=settings.max_num_seqs,
            enable_lora=settings.enable_lora,
            max_loras=settings.max_loras,
            max_lora_rank=settings.max_lora_rank,
            cpu_reserved_cores=None
            if gpu
            else (reserved if reserved is not None else default_reserved_cores(model)),
        ),
        adapters,
    )
