"""Tool server latency and sandbox throughput, over real HTTP to `sciserve tool-server`
processes. Prints p50/p99 per typical call next to its goal, and writes JSON.

Run: `python -m bench.tools [--repeats 30]`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import percentile, write_result
from entrypoints.embedded import ServiceProcesses

PDE_1D = {
    "dimension": "1D",
    "D": 0.81,
    "T": 10,
    "L": 86,
    "ic_type": "step",
    "ic_params": {"left_value": 67, "right_value": 44},
    "bc_type": "dirichlet",
    "bc_params": {"left_value": 67, "right_value": 44},
    "solution_type": "get_value_at_point",
    "solution_x": 70,
}
PDE_2D = {
    "dimension": "2D",
    "D": 0.34,
    "T": 390,
    "Lx": 80,
    "Ly": 40,
    "ic_type": "checkerboard",
    "ic_params": {"value1": 100, "value2": 0, "cell_size_x": 20, "cell_size_y": 10},
    "bc_type": "neumann",
    "solution_type": "get_max_value",
}
# AWL's sphere scene: dt = 0.1 ms, so converged numerics step 30 000 times for 3 s
# and AWL's step rule 3 001 times (0.3 s simulated).
COLLISION = {
    "simend": 3,
    "x1": 0,
    "z1": 0.1,
    "x1_v": 2,
    "r1": 0.1,
    "mass1": 1,
    "x2": 1,
    "z2": 0.1,
    "r2": 0.1,
    "mass2": 2,
}
CALLS: list[tuple[str, str, str, dict[str, Any], float | None]] = [
    # (label, server, tool, arguments, goal in ms)
    ("python trivial (warm)", "python", "write_and_run_code", {"code": "print(1 + 1)"}, 30),
    (
        "python numpy",
        "python",
        "write_and_run_code",
        {"code": "import numpy as np\nprint(np.linalg.eigvals(np.eye(50)).sum())"},
        None,
    ),
    ("pde 1D", "pde", "setup_and_solve", PDE_1D, 200),
    ("pde 2D", "pde", "setup_and_solve", PDE_2D, 2000),
    ("pde 1D awl", "pde", "setup_and_solve", {**PDE_1D, "numerics": "awl"}, 200),
    ("pde 2D awl", "pde", "setup_and_solve", {**PDE_2D, "numerics": "awl"}, 2000),
    ("mechanics 3 s collision", "mechanics", "sphere_collision_simulation", COLLISION, 2000),
    (
        "mechanics 3 s collision awl",
        "mechanics",
        "sphere_collision_simulation",
        {**COLLISION, "numerics": "awl"},
        200,
    ),
    (
        "mechanics 3 s double pendulum",
        "mechanics",
        "double_pendulum_simulation",
        {"simend": 3, "initial_angle_1": 1.0},
        200,
    ),
    (
        "climate (cached scenario)",
        "climate",
        "global_temperature",
        {"scenario": "ssp245", "start_year": 2081, "end_year": 2100},
        None,
    ),
    (
        "climate (new emission delta)",
        "climate",
        "global_temperature",
        {"scenario": "ssp245", "start_year": 2081, "end_year": 2100, "delta_CH4": -20},
        None,
    ),
    (
        "epidemiology SEIHR",
        "epidemiology",
        "simulate_epidemic",
        {
            "model": "SEIHR",
            "population": 1e6,
            "r0": 2.5,
            "infectious_period_days": 7,
            "incubation_period_days": 4,
            "initial_infected": 10,
            "days": 365,
            "output": "peak_day",
            "interventions": [{"start_day": 30, "end_day": 90, "contact_reduction": 0.5}],
        },
        None,
    ),
]


def _call(client: httpx.Client, url: str, tool: str, arguments: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    response = client.post(f"{url}/invoke", json={"tool": tool, "arguments": arguments})
    elapsed = (time.perf_counter() - t0) * 1000
    response.raise_for_status()
    return elapsed


def latency(urls: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    rows = []
    with httpx.Client(timeout=120) as client:
        for label, server, tool, arguments, goal in CALLS:
            _call(client, urls[server], tool, arguments)  # warm-up (imports, caches)
            samples = []
            for i in range(repeats):
                args = dict(arguments)
                if label == "climate (new emission delta)":
                    args["delta_CH4"] = -20 - i  # a new run each time, not the cache
                samples.append(_call(client, urls[server], tool, args))
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            met = None if goal is None else p50 <= goal
            rows.append(
                {
                    "call": label,
                    "p50_ms": round(p50, 2),
                    "p99_ms": round(p99, 2),
                    "goal_ms": goal,
                    "met": met,
                }
            )
            print(f"{label:32s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  goal {goal} ms  met={met}")
    return rows


async def sandbox_throughput(url: str, callers: int, runs_per_caller: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=120) as client:
        payload = {"tool": "write_and_run_code", "arguments": {"code": "print(sum(range(1000)))"}}

        async def caller() -> list[float]:
            times = []
            for _ in range(runs_per_caller):
                t0 = time.perf_counter()
                response = await client.post(f"{url}/invoke", json=payload)
                assert response.json()["result"]["stdout"] == "499500\n"
                times.append((time.perf_counter() - t0) * 1000)
            return times

        t0 = time.perf_counter()
        await caller()
        single_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = await asyncio.gather(*(caller() for _ in range(callers)))
        wall = time.perf_counter() - t0
    flat = [t for r in results for t in r]
    summary = {
        "callers": callers,
        "runs": len(flat),
        "runs_per_second": round(len(flat) / wall, 1),
        "single_caller_runs_per_second": round(runs_per_caller / single_wall, 1),
        "p50_ms": round(percentile(flat, 50), 1),
        "p99_ms": round(percentile(flat, 99), 1),
    }
    print(
        f"sandbox, {callers} concurrent callers: {summary['runs_per_second']} runs/s "
        f"(1 caller: {summary['single_caller_runs_per_second']} runs/s), "
        f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--callers", type=int, default=16)
    options = parser.parse_args()
    processes = ServiceProcesses(Path(tempfile.mkdtemp()), {})
    try:
        urls = {
            name: processes.start_tool_server(name)[1]
            for name in ("python", "pde", "mechanics", "climate", "epidemiology")
        }
        rows = latency(urls, options.repeats)
        throughput = asyncio.run(sandbox_throughput(urls["python"], options.callers, 10))
    finally:
        processes.stop_all()
    path = write_result("tools", {"latency": rows, "sandbox_throughput": throughput})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
