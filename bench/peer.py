"""sciserve against optillm, both in front of the same `vllm serve` (issue 14).

One `vllm serve` on the model; optillm proxies it; sciserve (embedded, its remote
OpenAI engine) uses it as its engine. Every system is measured by `sciserve eval`'s
OpenAI-compatible harness (evaluation/openai_runner.py) on the same gsm_symbolic
questions, graded exactly, at each concurrency, back to back in one run:

1. overhead: optillm `none` vs sciserve `direct` (raw vLLM as the floor);
2. optillm `self_consistency` (K=5 sequential requests at temperature 1) vs sciserve
   `samples:5` (its 5 candidates, one greedy, in one engine call, then a majority
   vote). Goal: ≥ 3x faster at concurrency 1, ≥ 2x at 8, at equal or better accuracy;
3. optillm's `majority_voting` plugin (one request with n=k) vs sciserve `samples:k`,
   same k and temperature. Goal: at least as fast.

For each: wall time, accuracy, completion tokens as the system bills them (its `usage`)
and as the engine counted them (vLLM's `vllm:generation_tokens_total` over the run);
then a streamed pass at concurrency 1 on the first `--ttft-questions` questions for the
time to first token (a separate pass: optillm's streamed answers carry no usage).
sciserve's vote temperature is set to `--temperature`, optillm's plugin gets it per
request; self_consistency's 1.0 is its own, fixed.

Needs the `peer` extra, installed without its resolver (README "Benchmarks").

    .venv/bin/python -m bench.peer --model demo --questions 20        # the 0.5B demo model
    .venv/bin/python -m bench.peer --model tiny --questions 2          # smoke
Writes `bench/results/peer-<model>.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import typer

from bench.common import stop_process, wait_ready, write_result
from contract.settings import Settings
from entrypoints.embedded import EmbeddedServer, free_port
from evaluation.datasets import Item, load_items
from evaluation.harness import evaluate_openai

SERVED = "peer-model"  # the name vllm serve gives the model, for every client
SEED = 2024  # gsm_symbolic questions; sciserve's own accuracy benches use 1234
GENERATED = re.compile(r"^vllm:generation_tokens_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", re.M)
PROMPTED = re.compile(r"^vllm:prompt_tokens_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", re.M)


def model_folder(model: str, work: Path) -> tuple[Path, bool]:
    """(folder, is_tiny): the random test model, the prepared demo model, or a folder."""
    if model == "tiny":
        from workers.models.tiny import build_tiny_model

        return build_tiny_model(work / "tiny").model_dir, True
    if model == "demo":
        from workers.models.demo import demo_model_dir

        return demo_model_dir(Settings(demo_model="qwen2.5-coder-0.5b")), False
    return Path(model), False


@contextlib.contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path, ready: str, timeout: float, cwd: Path
) -> Iterator[float]:
    """A server subprocess, up (its `ready` URL answers 200) until the block ends."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        yield wait_ready(ready, process, log, timeout)
    finally:
        stop_process(process)


def vllm_command(folder: Path, port: int, tiny: bool) -> list[str]:
    """`vllm serve` as the CPU needs it: a KV size, eager mode, a bounded batch."""
    kv_bytes = (256 if tiny else 1024) * 1024 * 1024
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(folder), "--served-model-name", SERVED,
            "--host", "127.0.0.1", "--port", str(port),
            "--dtype", "float32" if tiny else "auto", "--max-model-len", "4096",
            "--kv-cache-memory-bytes", str(kv_bytes), "--enforce-eager",
            "--max-num-seqs", "64", "--seed", "0"]  # fmt: skip


def optillm_command(vllm_url: str, port: int) -> list[str]:
    return [sys.executable, "-c", "from optillm import main; main()",
            "--base-url", f"{vllm_url}/v1", "--model", SERVED,
            "--host", "127.0.0.1", "--port", str(port), "--log", "warning"]  # fmt: skip


def engine_tokens(vllm_url: str) -> tuple[float, float]:
    """(generated, prompt) tokens vLLM has counted since it started, over all series."""
    text = httpx.get(f"{vllm_url}/metrics", timeout=10).text
    return (
        sum(float(v) for v in GENERATED.findall(text)),
        sum(float(v) for v in PROMPTED.findall(text)),
    )


@dataclass(frozen=True)
class System:
    """One way of answering: which endpoint, which model name, what goes with it."""

    label: str
    url: str
    model: str
    temperature: float | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)


async def measure(
    system: System,
    items: list[Item],
    concurrency: int,
    vllm_url: str,
    *,
    max_tokens: int,
    stream: bool = False,
) -> dict[str, Any]:
    """One system on every item; the engine's token counters around it. Streamed runs
    measure time to first token; unstreamed ones the usage, which optillm's streamed
    answers leave out (its approaches stream the finished text without `usage`)."""
    before = await asyncio.to_thread(engine_tokens, vllm_url)
    report = await evaluate_openai(
        items,
        [system.model],
        system.url,
        concurrency=concurrency,
        max_tokens=max_tokens,
        temperature=system.temperature,
        stream=stream,
        extra_body=system.extra_body,
        keep_rows=True,
    )
    after = await asyncio.to_thread(engine_tokens, vllm_url)
    [run] = report["runs"]
    rows = run["items"]
    result = {
        "system": system.label,
        "model": system.model,
        "extra_body": system.extra_body,
        "concurrency": concurrency,
        "questions": len(rows),
        "accuracy": run["metrics"]["accuracy"],
        "errors": run["metrics"]["errors"],
        "first_error": next((r["error"] for r in rows if r["error"]), None),
        "wall_s": run["wall_s"],
        "seconds_per_question": run["metrics"]["seconds_per_question"],
        "engine_completion_tokens": after[0] - before[0],
        "engine_prompt_tokens": after[1] - before[1],
    }
    if stream:
        ttfts = sorted(r["ttft_s"] for r in rows if r["ttft_s"] is not None)
        result["ttft_s_p50"] = statistics.median(ttfts) if ttfts else None
        result["ttft_s_mean"] = statistics.mean(ttfts) if ttfts else None
    else:
        result["billed_completion_tokens"] = sum(r["generated_tokens"] for r in rows)
        result["billed_prompt_tokens"] = sum(r["prompt_tokens"] for r in rows)
    return result


def _ratio(slow: dict[str, Any], fast: dict[str, Any]) -> float | None:
    return slow["wall_s"] / fast["wall_s"] if fast["wall_s"] else None


def _not_worse(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return (ours["accuracy"] or 0.0) >= (theirs["accuracy"] or 0.0)


def systems(urls: dict[str, str], k: int, temperature: float) -> dict[str, System]:
    vllm, optillm, sciserve = urls["vllm"], urls["optillm"], urls["sciserve"]

    def votes(n: int) -> dict[str, Any]:
        return {"strategy": {"tools": "never", "samples": n}}

    table = {
        "vllm": System("vllm", vllm, SERVED),
        "optillm_none": System("optillm none", optillm, f"none-{SERVED}"),
        "sciserve_direct": System("sciserve direct", sciserve, "sciserve-direct"),
        "optillm_self_consistency": System(
            "optillm self_consistency", optillm, f"self_consistency-{SERVED}"
        ),
        "sciserve_samples_5": System(
            "sciserve samples:5", sciserve, "sciserve-direct", extra_body=votes(5)
        ),
        "optillm_majority_voting": System(
            f"optillm majority_voting k={k}",
            optillm,
            f"majority_voting-{SERVED}",
            temperature=temperature,
            extra_body={"k": k},
        ),
    }
    if k != 5:
        table["sciserve_samples_k"] = System(
            f"sciserve samples:{k}", sciserve, "sciserve-direct", extra_body=votes(k)
        )
    return table


async def compare(
    urls: dict[str, str],
    items: list[Item],
    concurrency: list[int],
    *,
    k: int,
    temperature: float,
    max_tokens: int,
    ttft_questions: int,
    save: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Every system at every concurrency, back to back, then the streamed pass; saved
    after every run, so a run cut short still reports what it measured."""
    engine = urls["vllm"].removesuffix("/v1")
    table = systems(urls, k, temperature)
    # One unmeasured question through each path, so no run pays a first-call cost.
    for name in ("vllm", "optillm_none", "sciserve_direct"):
        await measure(table[name], items[:1], 1, engine, max_tokens=max_tokens)
    results: dict[str, Any] = {}
    for c in concurrency:
        runs: dict[str, Any] = {}
        results[f"concurrency_{c}"] = {"runs": runs}
        for name, system in table.items():
            runs[name] = await measure(system, items, c, engine, max_tokens=max_tokens)
            save(results)
        vote_k = runs.get("sciserve_samples_k", runs["sciserve_samples_5"])
        sc_speedup = _ratio(runs["optillm_self_consistency"], runs["sciserve_samples_5"])
        mv_speedup = _ratio(runs["optillm_majority_voting"], vote_k)
        results[f"concurrency_{c}"] = {
            "runs": runs,
            "overhead": {
                "sciserve_direct_vs_optillm_none": _ratio(
                    runs["sciserve_direct"], runs["optillm_none"]
                ),
                "sciserve_direct_vs_vllm": _ratio(runs["sciserve_direct"], runs["vllm"]),
                "optillm_none_vs_vllm": _ratio(runs["optillm_none"], runs["vllm"]),
            },
            "self_consistency": {
                "sciserve_speedup": sc_speedup,
                "goal": ">= 3" if c == 1 else ">= 2",
                "accuracy_sciserve": runs["sciserve_samples_5"]["accuracy"],
                "accuracy_optillm": runs["optillm_self_consistency"]["accuracy"],
                "goal_met": sc_speedup is not None
                and sc_speedup >= (3 if c == 1 else 2)
                and _not_worse(runs["sciserve_samples_5"], runs["optillm_self_consistency"]),
            },
            "majority_voting": {
                "k": k,
                "temperature": temperature,
                "sciserve_speedup": mv_speedup,
                "accuracy_sciserve": vote_k["accuracy"],
                "accuracy_optillm": runs["optillm_majority_voting"]["accuracy"],
                "goal": ">= 1",
                "goal_met": mv_speedup is not None and mv_speedup >= 1,
            },
        }
        save(results)
    ttft_items = items[:ttft_questions]
    streamed: dict[str, Any] = {}
    results["streamed_concurrency_1"] = {"questions": len(ttft_items), "runs": streamed}
    for name, system in table.items():
        streamed[name] = await measure(
            system, ttft_items, 1, engine, max_tokens=max_tokens, stream=True
        )
        save(results)
    return results


def main(
    model: str = "demo",
    questions: int = 20,
    seed: int = SEED,
    concurrency: str = "1,8",
    k: int = 5,
    temperature: float = 1.0,
    max_tokens: int = 512,
    ttft_questions: int = 5,
) -> None:
    """Starts vllm serve, optillm and sciserve, compares them, writes the JSON."""
    levels = [int(c) for c in concurrency.split(",") if c.strip()]
    items = load_items("gsm_symbolic", limit=questions, seed=seed)
    work = Path(tempfile.mkdtemp(prefix="sciserve-peer-"))
    folder, tiny = model_folder(model, work)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    vllm_port, optillm_port = free_port(), free_port()
    vllm_url = f"http://127.0.0.1:{vllm_port}"
    optillm_env = {k: v for k, v in env.items() if k != "OPTILLM_API_KEY"}  # a local engine
    optillm_env["OPENAI_API_KEY"] = "not-checked"  # picks optillm's OpenAI client, for vLLM
    settings = Settings(
        port=free_port(),
        model=str(folder),
        engine="openai",
        engine_url=vllm_url,
        worker_concurrency=64,
        max_model_len=4096,
        sample_temperature=temperature,
    )
    with (
        _process(
            vllm_command(folder, vllm_port, tiny),
            env,
            work / "vllm-serve.log",
            f"{vllm_url}/health",
            1200,
            work,
        ) as vllm_start_s,
        _process(
            optillm_command(vllm_url, optillm_port),
            optillm_env,
            work / "optillm.log",
            f"http://127.0.0.1:{optillm_port}/health",
            300,
            work,
        ),
        EmbeddedServer(settings, ready_timeout_s=600) as server,
    ):
        urls = {
            "vllm": f"{vllm_url}/v1",
            "optillm": f"http://127.0.0.1:{optillm_port}/v1",
            "sciserve": f"{server.url}/v1",
        }
        import optillm

        header = {
            "model": str(folder),
            "dataset": f"gsm_symbolic seed {seed}, {len(items)} questions, graded exactly",
            "max_tokens": max_tokens,
            "optillm_version": getattr(optillm, "__version__", "unknown"),
            "vllm_serve": " ".join(vllm_command(folder, vllm_port, tiny)[1:]),
            "vllm_start_s": vllm_start_s,
            "prompt": "sciserve's direct prompt for every system (sciserve builds it itself)",
            "tokens": "billed: the usage each system returns (optillm's approaches bill "
            "completion tokens only); engine: vLLM's counters over the run (it counts an "
            "n-sample request's prompt once per sample)",
        }

        def save(results: dict[str, Any]) -> None:
            write_result(
                f"peer-{model if model in ('tiny', 'demo') else 'custom'}", {**header, **results}
            )

        asyncio.run(
            compare(
                urls,
                items,
                levels,
                k=k,
                temperature=temperature,
                max_tokens=max_tokens,
                ttft_questions=ttft_questions,
                save=save,
            )
        )


if __name__ == "__main__":
    typer.run(main)
