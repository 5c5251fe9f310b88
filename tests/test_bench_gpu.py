"""`bench/gpu.py --smoke` runs end to end on the CPU (not timed): raw `vllm serve`, the
engine alone and `sciserve serve`, on the tiny model with its adapters, and writes a
JSON with every phase and the ratios. The figures themselves mean nothing on a CPU;
the GPU run is bench/gpu_device.sh."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import _import_vllm

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_run_writes_every_phase(tmp_path: Path) -> None:
    _import_vllm()
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu", "--smoke", "--concurrency", "2,4",
         "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert set(result["phases"]) == {"raw_vllm", "engine", "solve"}
    for phase in result["phases"].values():
        assert phase["start_s"] > 0
        assert [r["concurrency"] for r in phase["runs"]] == [2, 4]
        assert all(r["errors"] == 0 and r["output_tokens"] > 0 for r in phase["runs"])
    engine = result["phases"]["engine"]
    assert engine["lora_vs_base_p50"] > 0 and engine["n8_vs_n1_p50"] > 0
    assert "vllm:num_requests_running" in result["phases"]["solve"]["vllm_metrics_exposed"]
    summary = result["summary"]
    assert set(summary["per_concurrency"]) == {"2", "4"}
    assert summary["per_concurrency"]["4"]["solve_vs_raw"] > 0
    assert "overhead_p50_ms" in summary and set(summary["goals"]) == {
        "solve_vs_raw_ge_0.95",
        "overhead_le_3ms_and_3pct",
    }
