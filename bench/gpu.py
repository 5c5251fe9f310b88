"""GPU worker pool against raw vLLM, in one run; JSON out.

Phases run one after another, so each has the device to itself:

1. raw `vllm serve` (its own defaults) on the model: output tokens/s at each
   concurrency, and its start time;
2. the engine alone (in-process `VllmEngine`, built as a worker builds it): the same
   prompts at each concurrency, latency at concurrency 1, LoRA request vs base, `n=8`
   vs `n=1`, engine start time (LoRA enabled);
3. `sciserve serve` (gateway + worker in one process, its own defaults): `/solve` direct
   at each concurrency and at concurrency 1.

Every run sends the same chat messages (the direct prompt `/solve` builds), greedy, the
same `max_tokens`, from the same asyncio client. Throughput counts the output tokens
each path reports (usage), so runs that stop early at EOS are still compared fairly.
Goals (issue 12): `/solve` >= 0.95x raw vLLM; gateway overhead p50 <= 3 ms and <= 3%.

    python -m bench.gpu                      # GPU: demo model, 256 and 512 concurrent
    python -m bench.gpu --smoke              # CPU smoke: tiny model, small numbers
    python -m bench.gpu --out results.json --model PATH --concurrency 256,512

Without `--model`, the prepared demo model (`sciserve model prepare`) with three
random LoRA adapters (rank 16) made here; `--smoke` uses the tiny test model and its
adapters. Each phase that fails records its error and the rest still run.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import typer

from bench.common import stop_process, wait_ready

PROBLEMS = [
    "Natalia sold clips to 48 of her friends in April, and then half as many in May. "
    "How many clips did she sell in total?",
    "A train travels at 60 km/h for 2.5 hours. How far does it go?",
    "What is the derivative of x^3 + 2x?",
    "Solve 3x + 5 = 20 for x.",
    "A rectangle is 7 cm by 12 cm. What is its area?",
    "What is 15% of 80?",
    "A ball is dropped from 20 m. How long until it lands (g = 9.81 m/s^2)?",
    "What is the sum of the first 50 positive integers?",
]
RAW_NAME = "bench-model"
SOLVE_GOAL = 0.95
OVERHEAD_GOAL_MS = 3.0
OVERHEAD_GOAL_RATIO = 1.03


def _problem(i: int) -> str:
    """Distinct prompts (no prefix-cache shortcut across requests), same shape."""
    return f"{PROBLEMS[i % len(PROBLEMS)]} (case {i})"


def _messages(i: int) -> list[dict[str, str]]:
    from workers.prompts import direct_user_prompt

    return [{"role": "user", "content": direct_user_prompt(_problem(i), None)}]


def _p(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _load(
    call: Callable[[int], Awaitable[int]], prompts: int, concurrency: int
) -> dict[str, Any]:
    """`prompts` calls, at most `concurrency` at once; tokens/s over the whole run,
    after a discarded warm-up burst at the same concurrency."""
    await asyncio.gather(*(call(50_000 + i) for i in range(min(concurrency, prompts))))
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> int:
        async with gate:
            started = time.perf_counter()
            tokens = await call(i)
            latencies.append(time.perf_counter() - started)
            return tokens

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(prompts)), return_exceptions=True)
    wall = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    tokens = sum(r for r in results if isinstance(r, int))
    return {
        "concurrency": concurrency,
        "prompts": prompts,
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "output_tokens": tokens,
        "wall_s": wall,
        "output_tokens_per_s": tokens / wall if wall else 0.0,
        "p50_latency_s": _p(latencies, 50) if latencies else None,
    }


async def _latency(call: Callable[[int], Awaitable[int]], requests: int) -> dict[str, float]:
    """Sequential calls (concurrency 1) after two warm-up calls: p50/p99 in ms."""
    for i in range(2):
        await call(10_000 + i)
    times = []
    for i in range(requests):
        started = time.perf_counter()
        await call(20_000 + i)
        times.append(time.perf_counter() - started)
    return {"p50_ms": _p(times, 50) * 1000, "p99_ms": _p(times, 99) * 1000, "n": len(times)}


def _client(concurrency: int, base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, timeout=1800, limits=limits)


class Plan:
    """What to run: model, adapters, sizes, and the engine arguments both sides share."""

    def __init__(self, smoke: bool, model: str | None, concurrency: list[int], prompts: int,
                 max_tokens: int, latency_requests: int, work: Path):  # fmt: skip
        from contract.settings import Settings
        from workers.engines.factory import has_cuda, resolve_model

        self.smoke = smoke
        self.gpu = has_cuda()
        self.concurrency = concurrency
        self.prompts = prompts
        self.max_tokens = max_tokens
        self.latency_requests = latency_requests
        self.work = work
        if smoke and model is None:
            from workers.models.tiny import build_tiny_model

            tiny = build_tiny_model(work / "tiny")
            self.model, self.registry = str(tiny.model_dir), tiny.registry
        else:
            self.model = model or resolve_model(Settings())
            self.registry = random_adapters(self.model, work / "adapters", rank=16)
        # The CPU needs an explicit KV cache and runs float32 on the tiny model.
        self.env = {
            "SCISERVE_MODEL": self.model,
            "SCISERVE_ADAPTER_REGISTRY": str(self.registry),
            "SCISERVE_MOUNT_TOOLS": "false",
            "HF_HUB_OFFLINE": "1",
        }
        if not self.gpu:
            self.env |= {"SCISERVE_KV_CACHE_BYTES": str(256 << 20), "SCISERVE_DTYPE": "float32"}

    def settings(self) -> Any:
        """The same settings `sciserve serve` reads from `self.env`."""
        from contract.settings import Settings

        values: dict[str, Any] = {
            k.removeprefix("SCISERVE_").lower(): v
            for k, v in self.env.items()
            if k.startswith("SCISERVE_")
        }
        return Settings(**values)


def random_adapters(model: str, out: Path, rank: int) -> Path:
    """Three LoRA adapters with random weights (policy, asker, truster) on every
    attention and MLP projection, and a registry file for them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    registry = out / "registry.yaml"
    if registry.exists():
        return registry
    base: Any = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.bfloat16)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lines = ["adapters:"]
    for seed, role in enumerate(("policy", "asker", "truster")):
        torch.manual_seed(seed)
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets,
                            init_lora_weights=False)  # fmt: skip
        peft_model = get_peft_model(base, config)
        peft_model.save_pretrained(str(out / role))
        base = peft_model.unload()
        lines.append(f"  {role}: {{path: {role}, base_model: {json.dumps(model)}, rank: {rank}}}")
    registry.write_text("\n".join(lines) + "\n")
    return registry


async def phase_raw(plan: Plan) -> dict[str, Any]:
    """Raw `vllm serve` with its defaults (the CPU needs a KV size and eager mode)."""
    from entrypoints.embedded import free_port

    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", plan.model,
               "--served-model-name", RAW_NAME, "--port", str(port), "--max-model-len", "4096",
               "--seed", "0"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not plan.gpu:
        command += ["--dtype", "float32", "--enforce-eager", "--max-num-seqs", "64"]
        env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    log = plan.work / "vllm-serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        start_s = await asyncio.to_thread(
            wait_ready, f"http://127.0.0.1:{port}/health", process, log, 1200
        )
        runs = []
        for concurrency in plan.concurrency:
            async with _client(concurrency, f"http://127.0.0.1:{port}") as client:

                async def call(i: int, client: httpx.AsyncClient = client) -> int:
                    response = await client.post("/v1/chat/completions", json={
                        "model": RAW_NAME, "messages": _messages(i),
                        "max_tokens": plan.max_tokens, "temperature": 0})  # fmt: skip
                    response.raise_for_status()
                    return int(response.json()["usage"]["completion_tokens"])

                runs.append(await _load(call, plan.prompts, concurrency))
        return {"start_s": start_s, "runs": runs, "command": " ".join(command[1:])}
    finally:
        stop_process(process)


async def phase_engine(plan: Plan) -> dict[str, Any]:
    """The in-process engine as a worker builds it, no HTTP and no queue."""
    from workers.engines.base import GenerationRequest, Sampling
    from workers.engines.factory import build_engine

    engine: Any = build_engine(plan.settings())
    started = time.perf_counter()
    await engine.start()
    start_s = time.perf_counter() - started
    try:

        async def call(
            i: int, role: str | None = None, n: int = 1, temperature: float = 0.0
        ) -> int:
            sampling = Sampling(max_tokens=plan.max_tokens, temperature=temperature, seed=i)
            request = GenerationRequest(messages=_messages(i), role=role, sampling=sampling, n=n)
            [completion] = await engine.generate([request])
            return completion.completion_tokens

        runs = [await _load(call, plan.prompts, c) for c in plan.concurrency]
        base = await _latency(call, plan.latency_requests)
        lora = await _latency(lambda i: call(i, role="policy"), plan.latency_requests)
        one = await _latency(lambda i: call(i, temperature=0.7), plan.latency_requests)
        eight = await _latency(lambda i: call(i, n=8, temperature=0.7), plan.latency_requests)
        return {
            "start_s": start_s,
            "max_num_seqs": engine.batch_capacity() if hasattr(engine, "batch_capacity") else None,
            "runs": runs,
            "latency_c1": base,
            "lora_latency_c1": lora,
            "lora_vs_base_p50": lora["p50_ms"] / base["p50_ms"],
            "n1_sampled_latency_c1": one,
            "n8_sampled_latency_c1": eight,
            "n8_vs_n1_p50": eight["p50_ms"] / one["p50_ms"],
        }
    finally:
        await engine.close()


async def phase_solve(plan: Plan) -> dict[str, Any]:
    """`sciserve serve` (gateway + in-process queue + worker) with its own defaults."""
    from entrypoints.embedded import free_port

    port = free_port()
    env = {**os.environ, **plan.env, "SCISERVE_PORT": str(port)}
    log = plan.work / "sciserve-serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "serve"], env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        start_s = await asyncio.to_thread(wait_ready, f"{url}/readyz", process, log, 1200)

        def body(i: int) -> dict[str, Any]:
            return {"problem": _problem(i), "max_tokens": plan.max_tokens,
                    "strategy": {"tools": "never"}}  # fmt: skip

        runs = []
        for concurrency in [*plan.concurrency, 1]:
            async with _client(concurrency, url) as client:

                async def call(i: int, client: httpx.AsyncClient = client) -> int:
                    response = await client.post("/solve", json=body(i))
                    response.raise_for_status()
                    return int(response.json()["usage"]["completion_tokens"])

                if concurrency == 1:
                    latency = await _latency(call, plan.latency_requests)
                else:
                    runs.append(await _load(call, plan.prompts, concurrency))
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        vllm_series = sorted({line.split("{")[0].split(" ")[0] for line in metrics.splitlines()
                              if line.startswith("vllm:")})  # fmt: skip
        return {"start_s": start_s, "runs": runs, "latency_c1": latency,
                "vllm_metrics_exposed": vllm_series}  # fmt: skip
    finally:
        stop_process(process)


def _ratios(result: dict[str, Any]) -> dict[str, Any]:
    """tok/s ratios per concurrency and the goals."""
    phases = result["phases"]

    def by_c(name: str) -> dict[int, float]:
        runs = phases.get(name, {}).get("runs", [])
        return {r["concurrency"]: r["output_tokens_per_s"] for r in runs if not r["errors"]}

    raw, engine, solve = by_c("raw_vllm"), by_c("engine"), by_c("solve")
    out: dict[str, Any] = {"per_concurrency": {}}
    for c in result["concurrency"]:
        row = {"raw_tok_s": raw.get(c), "engine_tok_s": engine.get(c), "solve_tok_s": solve.get(c)}
        if raw.get(c):
            row["engine_vs_raw"] = engine[c] / raw[c] if engine.get(c) else None
            row["solve_vs_raw"] = solve[c] / raw[c] if solve.get(c) else None
        out["per_concurrency"][str(c)] = row
    eng_c1 = phases.get("engine", {}).get("latency_c1")
    solve_c1 = phases.get("solve", {}).get("latency_c1")
    if eng_c1 and solve_c1:
        out["overhead_p50_ms"] = solve_c1["p50_ms"] - eng_c1["p50_ms"]
        out["overhead_p50_ratio"] = solve_c1["p50_ms"] / eng_c1["p50_ms"]
    solve_ratios = [r.get("solve_vs_raw") for r in out["per_concurrency"].values()]
    out["goals"] = {
        "solve_vs_raw_ge_0.95": bool(solve_ratios) and all(
            r is not None and r >= SOLVE_GOAL for r in solve_ratios),
        "overhead_le_3ms_and_3pct": "overhead_p50_ms" in out
        and out["overhead_p50_ms"] <= OVERHEAD_GOAL_MS
        and out["overhead_p50_ratio"] <= OVERHEAD_GOAL_RATIO,
    }  # fmt: skip
    return out


def main(
    smoke: bool = typer.Option(False, help="CPU smoke run: tiny model, small numbers."),
    model: str | None = typer.Option(None, help="Model folder; default: the demo model."),
    concurrency: str = typer.Option("256,512", help="Comma-separated concurrency levels."),
    prompts: int = typer.Option(1024, help="Prompts per throughput run."),
    max_tokens: int = typer.Option(256, help="Output tokens asked per request."),
    latency_requests: int = typer.Option(30, help="Sequential requests per latency figure."),
    phases: str = typer.Option("raw,engine,solve", help="Which phases to run."),
    out: Path = typer.Option(Path("bench/results/gpu.json"), help="JSON output file."),
    work: Path | None = typer.Option(
        None, help="Folder for adapters and logs; reuse it to run phases in separate calls."
    ),
    keep: bool = typer.Option(
        True, help="Keep phases already in --out (same model) that this call does not run."
    ),
) -> None:
    levels = [int(c) for c in concurrency.split(",") if c]
    if smoke:
        levels = [min(c, 8) for c in levels] if concurrency != "256,512" else [4, 8]
        prompts, max_tokens, latency_requests = min(prompts, 16), min(max_tokens, 16), 4
    if work is None:
        work = Path(tempfile.mkdtemp(prefix="sciserve-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = Plan(smoke, model, levels, prompts, max_tokens, latency_requests, work)
    result: dict[str, Any] = {
        "benchmark": "gpu",
        "smoke": smoke,
        "device": "cuda" if plan.gpu else "cpu",
        "model": plan.model,
        "adapters": str(plan.registry),
        "concurrency": levels,
        "prompts": prompts,
        "max_tokens": max_tokens,
        "phases": {},
        "errors": {},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    if keep and out.exists():
        earlier = json.loads(out.read_text())
        if earlier.get("model") == plan.model and earlier.get("concurrency") == levels:
            result["phases"] = earlier.get("phases", {})
    runners = {"raw": ("raw_vllm", phase_raw), "engine": ("engine", phase_engine),
               "solve": ("solve", phase_solve)}  # fmt: skip
    for key in phases.split(","):
        name, runner = runners[key]
        print(f"[bench.gpu] phase {name} ...", flush=True)
        try:
            result["phases"][name] = asyncio.run(runner(plan))
        except Exception:
            result["errors"][name] = traceback.format_exc()[-4000:]
            print(result["errors"][name], file=sys.stderr, flush=True)
        result["summary"] = _ratios(result)
        out.write_text(json.dumps(result, indent=2))  # partial results survive a later crash
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {out}")
    if result["errors"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
