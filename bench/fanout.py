"""K samples of one prompt: one request with n=K against K requests with n=1, raw engine.

Why: an early-stopped vote needs K separate n=1 requests (it reads each sample as it
finishes and aborts the rest; vLLM's n>1 children have ids the caller does not hold).
Before that design is paid for, measure what it costs against one n=K call on the
same engine and prompt: wall time, generated tokens and tokens per second, the
shapes interleaved round by round so drift hits all alike. The third shape is the
previous vote layout (greedy + one n=K-1 request), which a peer's single n=K call beat
one at a time.

    .venv/bin/python -m bench.fanout --model demo --k 5 --rounds 4
Writes `bench/results/fanout-<model>.json`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import typer

from bench.common import bench_settings, write_result
from evaluation.datasets import load_items
from workers.engines.base import GenerationRequest, Sampling
from workers.engines.factory import build_engine

app = typer.Typer(add_completion=False, help=__doc__)


def shapes(messages: list[dict[str, str]], k: int, seed: int, max_tokens: int) -> dict[str, Any]:
    def sampled(n: int, offset: int = 0) -> GenerationRequest:
        sampling = Sampling(max_tokens=max_tokens, temperature=0.7, seed=seed + offset)
        return GenerationRequest(messages=messages, sampling=sampling, n=n)

    greedy = GenerationRequest(messages=messages, sampling=Sampling(max_tokens=max_tokens))
    return {
        f"one n={k}": [sampled(k)],
        f"{k} x n=1": [sampled(1, i) for i in range(k)],
        f"greedy + n={k - 1}": [greedy, sampled(k - 1)],
    }


@app.command()
def main(
    model: str = "demo", k: int = 5, rounds: int = 4, max_tokens: int = 256, questions: int = 2
) -> None:
    """Each shape on the same prompts, round by round."""
    items = load_items("gsm_symbolic", limit=questions, seed=99)
    engine = build_engine(bench_settings(model, max_model_len=4096))
    runs: dict[str, list[dict[str, float]]] = {}

    async def go() -> None:
        await engine.start()
        try:
            warm = GenerationRequest(prompt="Hello", sampling=Sampling(max_tokens=8))
            await engine.generate([warm])
            for round_ in range(rounds):
                for item in items:
                    messages = [{"role": "user", "content": item.problem}]
                    for name, requests in shapes(messages, k, round_, max_tokens).items():
                        started = time.perf_counter()
                        completions = await engine.generate(requests)
                        seconds = time.perf_counter() - started
                        tokens = sum(c.completion_tokens for c in completions)
                        runs.setdefault(name, []).append({"seconds": seconds, "tokens": tokens})
                print(f"round {round_ + 1}/{rounds}", flush=True)
        finally:
            await engine.close()

    asyncio.run(go())
    summary = {
        name: {
            "seconds_mean": statistics.mean(r["seconds"] for r in rows),
            "tokens_mean": statistics.mean(r["tokens"] for r in rows),
            "tokens_per_s": sum(r["tokens"] for r in rows) / sum(r["seconds"] for r in rows),
        }
        for name, rows in runs.items()
    }
    reference = summary[f"one n={k}"]["tokens_per_s"]
    for name, figures in summary.items():
        figures["throughput_vs_one_request"] = figures["tokens_per_s"] / reference
        print(
            f"{name:14} {figures['seconds_mean']:.1f} s  {figures['tokens_mean']:.0f} tokens  "
            f"{figures['tokens_per_s']:.1f} tok/s  x{figures['throughput_vs_one_request']:.3f}"
        )
    path = write_result(f"fanout-{model}", {"k": k, "rounds": rounds, "summary": summary,
                                              "runs": runs})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    app()
