"""Shared benchmark plumbing: which model to run, percentiles, and JSON output.

Run benchmarks as modules from the repository root: `python -m bench.overhead`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

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


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> float:
    """Seconds until `url` answers 200; the server's log tail if it exits or never does."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready in {timeout:g} s: {log.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the server has not drained within a minute."""
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
