"""Engine and worker defaults follow the hardware: the CPU keeps its measured values,
a GPU gets vLLM's own batch and KV sizing, CUDA graphs, and worker concurrency at least
the engine's batch capacity.

Mock: `has_cuda` is replaced to answer True or False, so both paths run on either
device; the engine is built, not started, so only its vLLM arguments are checked.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import TEST_DEVICE, _import_vllm, tiny_settings
from workers.engines import factory
from workers.engines.vllm_engine import VllmEngine
from workers.models.tiny import TinyModel


def _options(tiny_model: TinyModel, **overrides: object) -> object:
    engine = factory.build_engine(tiny_settings(tiny_model, kv_cache_bytes=None, **overrides))
    assert isinstance(engine, VllmEngine)
    return engine.options


def test_cpu_defaults_keep_the_measured_values(
    tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory, "has_cuda", lambda: False)
    options = _options(tiny_model)
    assert options.device == "cpu"  # type: ignore[attr-defined]
    assert options.max_num_seqs == 64  # type: ignore[attr-defined]
    assert options.kv_cache_bytes == 1 << 30  # type: ignore[attr-defined]
    assert options.enforce_eager is True  # type: ignore[attr-defined]


def test_gpu_defaults_are_vllms_own(tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "has_cuda", lambda: True)
    options = _options(tiny_model)
    assert options.device == "cuda"  # type: ignore[attr-defined]
    assert options.max_num_seqs is None  # type: ignore[attr-defined]
    assert options.kv_cache_bytes is None  # type: ignore[attr-defined]
    assert options.enforce_eager is False  # type: ignore[attr-defined]
    assert options.cpu_reserved_cores is None  # type: ignore[attr-defined]
    # An operator's explicit choice still wins.
    assert _options(tiny_model, max_num_seqs=128).max_num_seqs == 128  # type: ignore[attr-defined]


def _started(device: str, capacity: int) -> object:
    return SimpleNamespace(options=SimpleNamespace(device=device), batch_capacity=lambda: capacity)


def test_worker_concurrency_covers_the_gpu_batch() -> None:
    assert factory.default_worker_concurrency(_started("cuda", 1024)) == 1024  # type: ignore[arg-type]
    assert factory.default_worker_concurrency(_started("cuda", 8)) == 32  # type: ignore[arg-type]
    assert factory.default_worker_concurrency(_started("cpu", 64)) == 32  # type: ignore[arg-type]


def test_has_cuda_matches_the_test_device() -> None:
    _import_vllm()
    assert factory.has_cuda() is (TEST_DEVICE == "cuda")


def test_cpu_without_bf16_instructions_serves_float32(
    tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`auto` on a CPU whose flags lack AVX512-BF16 and AMX is float32 (bfloat16 runs on
    PyTorch's slow fallback there); with them, or on a GPU, the model's own dtype; an
    explicit SCISERVE_DTYPE always wins. Mock: the CPU's flags are files written here."""
    avx2 = tmp_path / "avx2"
    avx2.write_text("flags\t\t: fpu sse2 avx avx2 fma\n")
    bf16 = tmp_path / "bf16"
    bf16.write_text("flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_tile\n")
    assert not factory.cpu_bf16_native(avx2)
    assert factory.cpu_bf16_native(bf16)
    assert factory.cpu_bf16_native(tmp_path / "missing")  # unknown: as vLLM's auto
    monkeypatch.setattr(factory, "has_cuda", lambda: False)
    monkeypatch.setattr(factory, "cpu_bf16_native", lambda: False)
    assert _options(tiny_model, dtype="auto").dtype == "float32"  # type: ignore[attr-defined]
    assert _options(tiny_model, dtype="bfloat16").dtype == "bfloat16"  # type: ignore[attr-defined]
    monkeypatch.setattr(factory, "has_cuda", lambda: True)
    assert _options(tiny_model, dtype="auto").dtype == "auto"  # type: ignore[attr-defined]
    monkeypatch.setattr(factory, "has_cuda", lambda: False)
    monkeypatch.setattr(factory, "cpu_bf16_native", lambda: True)
    assert _options(tiny_model, dtype="auto").dtype == "auto"  # type: ignore[attr-defined]
