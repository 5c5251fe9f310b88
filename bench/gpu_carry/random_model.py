"""The demo model's architecture with random weights, built on the GPU machine.

No model can be downloaded there, and the demo model's weights (3 GB in bf16) would
take dozens of parts. Throughput and latency do not depend on the weights' values, so
the kit carries only the demo model's tokenizer and config, and the machine builds
random bf16 weights of the same shapes (`AutoModelForCausalLM.from_config`). Its text
is gibberish; every figure that does not grade answers holds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# Weights and the prepared-model marker stay behind; the rest is tokenizer and config.
_WEIGHTS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.gguf", "*.pt")
PREPARED_MARKER = "sciserve-prepared.json"
RANDOM_MARKER = "sciserve-random.json"


def skeleton_files(model_dir: Path) -> list[Path]:
    """The files of a model folder a tokenizer and `from_config` need: no weights."""
    weights = {p for pattern in _WEIGHTS for p in model_dir.glob(pattern)}
    files = [
        p
        for p in sorted(model_dir.iterdir())
        if p.is_file() and p not in weights and p.name != PREPARED_MARKER
    ]
    if not any(p.name == "config.json" for p in files):
        raise FileNotFoundError(f"{model_dir} has no config.json: it is not a model folder.")
    return files


def build_random_model(skeleton: Path, out: Path, dtype: str = "bfloat16", seed: int = 0) -> Path:
    """Random weights from `skeleton`'s config, saved with its tokenizer files into `out`.

    A folder already built from the same config and seed is reused.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config_text = (skeleton / "config.json").read_text()
    stamp = {"config": config_text, "dtype": dtype, "seed": seed}
    marker = out / RANDOM_MARKER
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(skeleton)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True)
    for path in skeleton_files(skeleton):
        if path.name != "config.json":  # save_pretrained wrote it, with the dtype
            shutil.copy2(path, out / path.name)
    marker.write_text(json.dumps(stamp))
    return out
