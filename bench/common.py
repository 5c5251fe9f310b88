"""Shared benchmark plumbing: which model to run, percentiles, and JSON output.

Run benchmarks as modules from the repository root: `python -m bench.overhead`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

from contract.settings import Settings
from entrypoints.embedded import free_port

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def bench_settings(model: str, **overrides: Any) -> Settings:
    """`tiny` builds the random test model (with its adapters); `demo` serves the prepared
    demo model; anything else is a model folder."""
    values: dict[str, Any] = {"port": free_port(), "worker_concurrency": 64}
    if model == "tiny":
        from workers.models.tiny import build_tiny_model

        tiny = build_tiny_model(Path(tempfile.mkdtemp(prefix="sciserve-bench-")))
        values.update(
            model=str(tiny.model_dir),
            adapter_registry=tiny.registry,
            dtype="float32",
            max_model_len=4096,
            kv_cache_bytes=256 * 1024 * 1024,
        )
    elif model != "demo":
        values["model"] = model
    values.update(overrides)
    return Settings(**values)


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return path
