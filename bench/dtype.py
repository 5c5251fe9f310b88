"""The served dtype on a CPU: bfloat16 against float32, same model, same prompts.

Why: the demo model is prepared in bfloat16, and vLLM serves a model in its own dtype
when asked for `auto`. On a CPU without bfloat16 instructions (AVX2 only: no
AVX512-BF16, no AMX) PyTorch multiplies bfloat16 matrices on a slow fallback path,
and float32 may be faster even though its weights are twice the bytes. This measures
it on the real engine, one dtype after the other in one run: decode tokens/s for one
stream and for eight, the time to a first answer, and how often the two dtypes' greedy
tokens agree (numerics differ, so answers may too).

    .venv/bin/python -m bench.dtype --model demo --max-tokens 96
Writes `bench/results/dtype.json`.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from bench.common import bench_settings, write_result
from bench.demo_model import NATALIA, STREAM_PROBLEMS, _stream_request
from workers.engines.factory import build_engine, cpu_bf16_native

app = typer.Typer(add_completion=False, help=__doc__)
DTYPES = ("bfloat16", "float32")


def _measure(model: str, dtype: str, max_tokens: int) -> dict[str, Any]:
    """One engine in `dtype`: warm-up, one stream, eight streams (greedy)."""
    import asyncio

    engine = build_engine(bench_settings(model, dtype=dtype, max_model_len=4096))

    async def run() -> dict[str, Any]:
        started = time.perf_counter()
        await engine.start()
        ready = time.perf_counter() - started
        try:
            await engine.generate([_stream_request("Say hi.", 8)])
            started = time.perf_counter()
            [one] = await engine.generate([_stream_request(NATALIA, max_tokens)])
            single = time.perf_counter() - started
            started = time.perf_counter()
            eight = await engine.generate([_stream_request(p, max_tokens) for p in STREAM_PROBLEMS])
            batched = time.perf_counter() - started
        finally:
            await engine.close()
        return {
            "engine_ready_s": ready,
            "single_stream_tok_s": one.completion_tokens / single,
            "single_stream_s": single,
            "eight_streams_aggregate_tok_s": sum(c.completion_tokens for c in eight) / batched,
            "texts": [one.texts[0], *(c.texts[0] for c in eight)],
        }

    return asyncio.run(run())


def _agreement(first: list[str], second: list[str]) -> float:
    """Share of the nine greedy outputs that are identical in both dtypes."""
    return sum(a == b for a, b in zip(first, second, strict=True)) / len(first)


@app.command()
def main(model: str = "demo", max_tokens: int = 96) -> None:
    results: dict[str, dict[str, Any]] = {}
    for dtype in DTYPES:
        results[dtype] = _measure(model, dtype, max_tokens)
        print(f"{dtype}: { {k: v for k, v in results[dtype].items() if k != 'texts'} }", flush=True)
    bf16, fp32 = results["bfloat16"], results["float32"]
    ratios = {
        "single_stream": fp32["single_stream_tok_s"] / bf16["single_stream_tok_s"],
        "eight_streams": fp32["eight_streams_aggregate_tok_s"]
        / bf16["eight_streams_aggregate_tok_s"],
    }
    identical = _agreement(bf16["texts"], fp32["texts"])
    payload = {
        "model": model,
        "max_tokens": max_tokens,
        "cpu_bf16_native": cpu_bf16_native(),
        **{
            dtype: {k: v for k, v in figures.items() if k != "texts"}
            for dtype, figures in results.items()
        },
        "float32_vs_bfloat16": ratios,
        "greedy_outputs_identical": identical,
    }
    path = write_result("dtype", payload)
    for dtype in DTYPES:
        figures = results[dtype]
        print(
            f"{dtype:9s} ready {figures['engine_ready_s']:.0f} s, one stream "
            f"{figures['single_stream_tok_s']:.1f} tok/s, eight "
            f"{figures['eight_streams_aggregate_tok_s']:.1f} tok/s"
        )
    print(
        f"float32 / bfloat16: one stream x{ratios['single_stream']:.2f}, eight "
        f"x{ratios['eight_streams']:.2f}; identical greedy outputs "
        f"{identical:.0%}; native bf16 on this CPU: "
        f"{cpu_bf16_native()}; wrote {path}"
    )


if __name__ == "__main__":
    app()
