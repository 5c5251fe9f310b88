"""The demo model on this machine through vLLM: tokens/s for 1 and 8 streams, peak RSS,
the time of `model prepare`, and a direct answer to the GSM8K-style "Natalia" problem.

Goal (issue 2): the direct answer in under 60 s, RSS under 10 GB.
    python -m bench.demo_model [--model demo|PATH] [--measure-prepare]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import typer

from bench.common import bench_settings, write_result
from workers.engines.base import GenerationRequest, Sampling
from workers.prompts import direct_user_prompt

NATALIA = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)
STREAM_PROBLEMS = [
    "A baker makes 24 muffins and sells 3/4 of them. How many are left?",
    "Tom has 5 boxes of 12 pencils and gives away 17. How many remain?",
    "A car uses 6 litres per 100 km. How much fuel for 350 km?",
    "Sara reads 15 pages a day. How many days for a 240-page book?",
    "A shirt costs $40 and is 25% off. What is the sale price?",
    "There are 3 classes of 28 pupils and 4 of 31. How many pupils in all?",
    "A tank holds 500 L and drains 12.5 L per minute. When is it empty?",
    "Jim earns $18 an hour for 37.5 hours. What does he earn?",
]


class PeakRss:
    """Samples the RSS of this process and all its children (vLLM's engine core)."""

    def __init__(self, interval_s: float = 0.2):
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _run(self, interval_s: float) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child may exit meanwhile
                    total += proc.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, total)
            time.sleep(interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _timed_prepare(cache: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "model", "prepare"],
        check=True,
        env={**os.environ, "SCISERVE_CACHE_DIR": cache},
    )
    return time.perf_counter() - started


def _measure_prepare() -> dict[str, float]:
    """A cold `sciserve model prepare` into an empty cache dir, then the no-op rerun."""
    with tempfile.TemporaryDirectory() as cache:
        cold = _timed_prepare(cache)
        return {"prepare_cold_s": cold, "prepare_second_run_s": _timed_prepare(cache)}


def _stream_request(problem: str, max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": direct_user_prompt(problem, None)}],
        sampling=Sampling(max_tokens=max_tokens),
    )


def main(model: str = "demo", max_tokens: int = 256, measure_prepare: bool = False) -> None:
    from entrypoints.embedded import EmbeddedServer

    results: dict[str, object] = {}
    if measure_prepare:
        results.update(_measure_prepare())
    settings = bench_settings(model)
    with PeakRss() as rss:
        started = time.perf_counter()
        with EmbeddedServer(settings, ready_timeout_s=900) as server:
            results["engine_ready_s"] = time.perf_counter() - started
            server.call(server.engine.generate([_stream_request("Say hi.", 8)]))  # warm-up

            started = time.perf_counter()
            [one] = server.call(server.engine.generate([_stream_request(NATALIA, max_tokens)]))
            elapsed = time.perf_counter() - started
            results["single_stream_tok_s"] = one.completion_tokens / elapsed

            started = time.perf_counter()
            eight = server.call(
                server.engine.generate([_stream_request(p, max_tokens) for p in STREAM_PROBLEMS])
            )
            elapsed = time.perf_counter() - started
            results["eight_streams_aggregate_tok_s"] = (
                sum(c.completion_tokens for c in eight) / elapsed
            )

            with server.client() as client:
                started = time.perf_counter()
                answer = client.post("/solve", json={"problem": NATALIA, "reference": "72"}).json()
                results["natalia_direct_s"] = time.perf_counter() - started
            results["natalia_answer"] = answer["answer"]
            results["natalia_correct"] = answer["correct"]
            results["natalia_completion_tokens"] = answer["usage"]["completion_tokens"]
    results["peak_rss_gb"] = rss.peak_bytes / 1e9
    results["goal_met"] = (
        results["natalia_direct_s"] < 60  # type: ignore[operator]
        and results["peak_rss_gb"] < 10  # type: ignore[operator]
        and bool(results["natalia_correct"])
    )
    write_result("demo_model", {"model": settings.model or settings.demo_model, **results})


if __name__ == "__main__":
    typer.run(main)
