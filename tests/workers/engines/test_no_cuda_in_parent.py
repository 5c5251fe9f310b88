"""The parent process never initializes CUDA before vLLM starts its engine core.

On a GPU, `torch.cuda.is_available()` in the parent creates a CUDA context, and the
engine core vLLM then forks dies with "Cannot re-initialize CUDA in forked subprocess".
On a CPU torch nothing would ever initialize, so besides `torch.cuda.is_initialized()`
the check spies on the `torch.cuda` entry points that probe or initialize a device and
fails on any call while the engine is built: that is what the old `has_cuda()` did.

The script runs in a fresh interpreter, so no earlier test's engine touched torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_DEVICE, TEST_DTYPE, TEST_GPU_MEMORY_UTILIZATION, _import_vllm
from workers.models.tiny import TinyModel

SCRIPT = r"""
import asyncio, json, sys
import torch

calls = {"build": [], "start": []}
phase = "build"
for name in ("is_available", "device_count", "init", "_lazy_init", "current_device",
             "get_device_properties", "mem_get_info", "set_device"):
    original = getattr(torch.cuda, name)
    def spy(*args, _name=name, _original=original, **kwargs):
        calls[phase].append(_name)
        return _original(*args, **kwargs)
    setattr(torch.cuda, name, spy)

from contract.settings import Settings
from workers.engines.base import GenerationRequest, Sampling
from workers.engines.factory import build_engine


async def main() -> None:
    global phase
    settings = Settings(**json.loads(sys.argv[1]))
    engine = build_engine(settings)
    phase = "start"
    await engine.start()
    request = GenerationRequest(prompt="1 + 1 =", sampling=Sampling(max_tokens=4))
    out = await engine.generate([request])
    await engine.close()
    print("RESULT " + json.dumps({
        "calls": calls,
        "initialized": torch.cuda.is_initialized(),
        "tokens": out[0].completion_tokens,
    }))


if __name__ == "__main__":
    asyncio.run(main())
"""


def test_building_and_starting_the_engine_leaves_cuda_uninitialized(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    _import_vllm()
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    settings = {
        "model": str(tiny_model.model_dir),
        "adapter_registry": str(tiny_model.registry),
        "dtype": TEST_DTYPE,
        "kv_cache_bytes": 64 * 1024 * 1024,
        "max_loras": 4,
    }
    if TEST_DEVICE == "cuda":
        settings["gpu_memory_utilization"] = TEST_GPU_MEMORY_UTILIZATION
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(settings)],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["tokens"] > 0
    assert result["calls"]["build"] == [], "building the engine probed CUDA in the parent"
    assert "_lazy_init" not in result["calls"]["start"]
    assert "init" not in result["calls"]["start"]
    assert result["initialized"] is False
