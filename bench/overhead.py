"""Gateway overhead: the same prompts through `/solve` (direct) and straight to
`engine.generate` on the same engine, interleaved in one run.

Goal (issue 2): p50 overhead <= 5 ms and <= 5%.
    python -m bench.overhead [--model tiny|demo|PATH] [--requests 40] [--max-tokens 32]
"""

from __future__ import annotations

import time

import typer
from rich.progress import track

from bench.common import bench_settings, percentile, write_result
from workers.engines.base import GenerationRequest, Sampling
from workers.prompts import direct_user_prompt

PROBLEMS = [
    "Natalia sold clips to 48 of her friends in April, and then half as many in May. "
    "How many clips did she sell in total?",
    "A train travels at 60 km/h for 2.5 hours. How far does it go?",
    "What is the derivative of x^3 + 2x?",
    "Solve 3x + 5 = 20 for x.",
]


def main(model: str = "tiny", requests: int = 40, max_tokens: int = 32) -> None:
    from entrypoints.embedded import EmbeddedServer

    settings = bench_settings(model)
    gateway_s: list[float] = []
    engine_s: list[float] = []
    with EmbeddedServer(settings) as server, server.client() as client:
        role = "policy" if "policy" in server.engine.adapters() else None
        for i in track(range(requests + 2), description="overhead"):
            problem = PROBLEMS[i % len(PROBLEMS)]
            request = GenerationRequest(
                messages=[{"role": "user", "content": direct_user_prompt(problem, None)}],
                role=role,
                sampling=Sampling(max_tokens=max_tokens),
            )
            started = time.perf_counter()
            server.call(server.engine.generate([request]))
            engine_time = time.perf_counter() - started
            started = time.perf_counter()
            response = client.post(
                "/solve",
                json={"problem": problem, "max_tokens": max_tokens, "strategy": {"tools": "never"}},
            )
            gateway_time = time.perf_counter() - started
            response.raise_for_status()
            if i >= 2:  # the first two warm both paths up
                engine_s.append(engine_time)
                gateway_s.append(gateway_time)
    p50_gateway, p50_engine = percentile(gateway_s, 50), percentile(engine_s, 50)
    overhead_ms = (p50_gateway - p50_engine) * 1000
    write_result(
        "overhead",
        {
            "model": settings.model,
            "requests": requests,
            "max_tokens": max_tokens,
            "p50_engine_ms": p50_engine * 1000,
            "p50_gateway_ms": p50_gateway * 1000,
            "p99_engine_ms": percentile(engine_s, 99) * 1000,
            "p99_gateway_ms": percentile(gateway_s, 99) * 1000,
            "p50_overhead_ms": overhead_ms,
            "p50_overhead_ratio": p50_gateway / p50_engine,
            "goal_met": overhead_ms <= 5 and p50_gateway / p50_engine <= 1.05,
        },
    )


if __name__ == "__main__":
    typer.run(main)
