"""Batching: one `/solve` alone, then 32 concurrent `/solve` requests, in one run.

Goal (issue 2): the 32 finish within 4x the latency of one.
    python -m bench.concurrency [--model tiny|demo|PATH] [--concurrent 32] [--max-tokens 64]
"""

from __future__ import annotations

import asyncio
import time

import httpx
import typer

from bench.common import bench_settings, percentile, write_result


async def _timed_solve(client: httpx.AsyncClient, i: int, max_tokens: int) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/solve",
        json={
            "problem": f"Compute {i} * 17 + 3.",
            "max_tokens": max_tokens,
            "strategy": {"tools": "never"},
        },
    )
    response.raise_for_status()
    return time.perf_counter() - started


async def _run(url: str, concurrent: int, max_tokens: int, repeats: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        await _timed_solve(client, 0, max_tokens)  # warm-up
        singles = [await _timed_solve(client, i, max_tokens) for i in range(repeats)]
        waves = []
        for _ in range(repeats):
            started = time.perf_counter()
            await asyncio.gather(*(_timed_solve(client, i, max_tokens) for i in range(concurrent)))
            waves.append(time.perf_counter() - started)
    single, wave = percentile(singles, 50), percentile(waves, 50)
    return {"single_p50_s": single, "concurrent_wall_p50_s": wave, "ratio": wave / single}


def main(model: str = "tiny", concurrent: int = 32, max_tokens: int = 64, repeats: int = 3) -> None:
    from entrypoints.embedded import EmbeddedServer

    # Greedy decoding to a fixed length: the tiny model rarely stops early.
    settings = bench_settings(model, max_num_seqs=max(64, concurrent))
    with EmbeddedServer(settings) as server:
        numbers = asyncio.run(_run(server.url, concurrent, max_tokens, repeats))
    write_result(
        "concurrency",
        {
            "model": settings.model,
            "concurrent": concurrent,
            "max_tokens": max_tokens,
            **numbers,
            "goal_met": numbers["ratio"] <= 4,
        },
    )


if __name__ == "__main__":
    typer.run(main)
