"""The closed loop, end to end: served traces → TUA data → a policy LoRA → hot-loaded →
base vs trained on held-out problems (issue: "Closed loop").

    .venv/bin/python -m bench.loop --model demo --train 200 --test 100 --k 4 --epochs 2
    .venv/bin/python -m bench.loop --model tiny --train 4 --test 4 --k 2 --steps 2   # smoke

Steps, all through the real service (embedded: gateway, queue, one vLLM worker, the
mounted tool servers) with the trace sink on:
1. problems: gsm_symbolic (reasoning-gym; the python tool) and one AWL domain whose tool
   sciserve serves (PDE, `--awl`); training and held-out problems never overlap
   (gsm_symbolic: different seeds; AWL: disjoint halves);
2. traces: each training problem direct with K samples (AWL's easy/hard rule) and
   adaptive once (the tool trajectory), with references;
3. `training.awl.build_tua` → SFT of a policy LoRA (`training.trainer`) on the served model;
4. hot-load it (POST /admin/adapters) and evaluate base (policy adapter unloaded) and
   trained on the held-out problems: adaptive accuracy, TUA (AWL's 2x2 table, easy/hard
   from each arm's own direct answer), tool-call rate on easy and on hard, generated
   tokens per question; each with a paired bootstrap 95% CI of trained - base.
Writes `bench/results/loop-<model>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from bench.common import RESULTS_DIR, bench_settings
from contract.schemas import Strategy
from entrypoints.embedded import EmbeddedServer
from evaluation.datasets import Item, load_items
from evaluation.metrics import ToolTable, paired_bootstrap
from evaluation.runner import Row, run_items
from training.awl import build_tua
from training.records import read_records
from training.trainer import TARGET_MODULES, TrainConfig, hot_load, train
from workers import traces

ADMIN_KEY = "bench-loop-admin"
AWL_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "awl" / "pde.json"


def problems(
    train_n: int, test_n: int, awl: Path | None, seed: int
) -> tuple[list[Item], list[Item]]:
    """Half gsm_symbolic, half the AWL set (when given); held-out never seen in training."""
    gsm_train, gsm_test = (train_n + 1) // 2, (test_n + 1) // 2
    if awl is None or not awl.exists():
        gsm_train, gsm_test = train_n, test_n
    train_items = load_items("gsm_symbolic", limit=gsm_train, seed=seed)
    test_items = load_items("gsm_symbolic", limit=gsm_test, seed=seed + 1)
    if awl is not None and awl.exists():
        pool = load_items(str(awl))
        random.Random(seed).shuffle(pool)
        half = len(pool) // 2
        train_items += pool[:half][: train_n - gsm_train]
        test_items += pool[half:][: test_n - gsm_test]
    return train_items, test_items


@dataclass
class Arm:
    """One model's held-out results: direct (easy/hard) and adaptive rows by item."""

    direct: dict[str, Row]
    adaptive: dict[str, Row]


async def evaluate(
    url: str,
    items: list[Item],
    max_tokens: int,
    concurrency: int,
    prompt_style: Literal["sciserve", "awl"] | None = None,
) -> Arm:
    """Direct (easy/hard) and adaptive runs; `prompt_style` "awl" serves the adaptive
    runs in AWL's layout, the one the teacher's trajectories are written in."""
    adaptive_strategy = Strategy(tools="auto", prompt_style=prompt_style)
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        direct = await run_items(
            client, items, Strategy(tools="never"), concurrency=concurrency, max_tokens=max_tokens
        )
        adaptive = await run_items(
            client, items, adaptive_strategy, concurrency=concurrency, max_tokens=max_tokens
        )
    return Arm({r.id: r for r in direct}, {r.id: r for r in adaptive})


def metrics(arm: Arm, ids: Sequence[str]) -> dict[str, float | None]:
    easy = [arm.direct[i].correct for i in ids]
    tool = [bool(arm.adaptive[i].used_tools) for i in ids]
    table = ToolTable.count(easy, tool)
    easy_tool = [t for e, t in zip(easy, tool, strict=True) if e]
    hard_tool = [t for e, t in zip(easy, tool, strict=True) if not e]
    return {
        "accuracy": sum(arm.adaptive[i].correct for i in ids) / len(ids),
        "direct_accuracy": sum(easy) / len(ids),
        "tua": table.tua,
        "tool_rate_easy": sum(easy_tool) / len(easy_tool) if easy_tool else None,
        "tool_rate_hard": sum(hard_tool) / len(hard_tool) if hard_tool else None,
        "tokens_per_question": sum(arm.adaptive[i].generated_tokens for i in ids) / len(ids),
    }


def bootstrap(
    base: Arm, trained: Arm, ids: list[str], samples: int = 2000, seed: int = 0
) -> dict[str, dict[str, float | None]]:
    """Paired bootstrap over held-out items: a 95% interval of trained - base per metric."""
    return paired_bootstrap(
        ids,
        lambda draw: metrics(base, draw),
        lambda draw: metrics(trained, draw),
        labels=("base", "trained"),
        samples=samples,
        seed=seed,
    )


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sciserve-loop-"))
    trace_dir = work / "traces"
    overrides: dict[str, Any] = {"admin_key": ADMIN_KEY, "default_max_tokens": args.max_tokens}
    if args.model == "demo":
        overrides["demo_model"] = args.demo_model
    settings = bench_settings(args.model, **overrides)
    train_items, test_items = problems(args.train, args.test, args.awl, args.seed)
    log(f"{len(train_items)} training and {len(test_items)} held-out problems; work in {work}")
    timings: dict[str, float] = {}
    traces.configure(traces.TraceSink(trace_dir))
    try:
        with EmbeddedServer(settings, ready_timeout_s=1800) as server:
            base_model = served_model(server)
            unload_policy(server.url)  # traces and the base arm: the base model itself
            started = time.perf_counter()
            asyncio.run(_collect(server.url, train_items, args))
            timings["collect_s"] = time.perf_counter() - started
            traces.configure(None)  # the evaluation is not training data
            records = list(read_records([trace_dir])) if trace_dir.exists() else []
            dataset = build_tua(records, seed=args.seed, threshold=args.threshold)
            data = work / "tua.jsonl"
            dataset.write(data, [trace_dir], args.seed)
            log(f"TUA data: {dataset.counts} -> {len(dataset.examples)} examples")
            if args.tua_data is not None:  # a smoke run's given data (a random model
                data = args.tua_data  # answers nothing right, so its traces teach nothing)
                dataset.examples = [json.loads(x) for x in data.read_text().splitlines() if x]
                log(f"training on the given {data}: {len(dataset.examples)} examples")
            if not dataset.examples:
                raise SystemExit("No TUA examples: collect more traces (--train, --k).")
            started = time.perf_counter()
            report = train(
                TrainConfig(
                    "sft",
                    "policy",
                    data,
                    work / "policy",
                    base_model,
                    rank=args.rank,
                    max_length=args.max_length,
                    max_steps=args.steps,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    learning_rate=args.lr,
                    seed=args.seed,
                ),
                lambda step, total, loss: log(f"step {step}/{total} loss {loss:.4f}"),
            )
            timings["train_s"] = time.perf_counter() - started
            started = time.perf_counter()
            base = asyncio.run(evaluate(server.url, test_items, args.max_tokens, args.concurrency))
            hot_load(server.url, ADMIN_KEY, "policy", report.adapter, base_model)
            trained = asyncio.run(
                evaluate(server.url, test_items, args.max_tokens, args.concurrency)
            )
            timings["evaluate_s"] = time.perf_counter() - started
    finally:
        traces.configure(None)
    ids = [item.id for item in test_items]
    result = {
        "model": args.model if args.model != "demo" else args.demo_model,
        "base_model": base_model,
        "train_problems": len(train_items),
        "test_problems": len(test_items),
        "k": args.k,
        "threshold": args.threshold,
        "trace_records": len(records),
        "tua_data": {
            "counts": dataset.counts,
            "examples": len(dataset.examples),
            "given": str(args.tua_data) if args.tua_data else None,
        },
        "training": {
            "steps": report.steps,
            "first_loss": report.first_loss,
            "last_loss": report.last_loss,
            "rank": args.rank,
        },
        "metrics": bootstrap(base, trained, ids, seed=args.seed),
        "timings_s": timings,
        "note": "Wall times are from a shared machine; others' work inflates them.",
    }
    return result


async def _collect(url: str, items: list[Item], args: argparse.Namespace) -> None:
    """Direct K samples (easy/hard) and one adaptive run per training problem."""
    await run_items_direct_k(url, items, args.k, args)
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        await run_items(
            client, items, Strategy(tools="auto"), concurrency=args.concurrency,
            max_tokens=args.max_tokens,
        )  # fmt: skip


async def run_items_direct_k(url: str, items: list[Item], k: int, args: argparse.Namespace) -> None:
    """K direct samples of every item, all K run (AWL's easy/hard rule reads them all)."""
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        await run_items(
            client, items, Strategy(tools="never", samples=k, stop="none"),
            concurrency=args.concurrency, max_tokens=args.max_tokens,
        )  # fmt: skip


def served_model(server: EmbeddedServer) -> str:
    return str(server.engine.model_name)


def unload_policy(url: str) -> None:
    response = httpx.delete(f"{url}/admin/adapters/policy", headers={"X-Admin-Key": ADMIN_KEY})
    if response.status_code in (404, 422) and "No adapter is loaded" in response.text:
        return  # the demo model has no policy adapter: the base model already serves
    if response.status_code not in (200, 204):
        raise RuntimeError(f"unloading the policy adapter failed: {response.text[:300]}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="demo", help="demo, tiny, or a model folder")
    parser.add_argument("--demo-model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--train", type=int, default=200, help="training problems")
    parser.add_argument("--test", type=int, default=100, help="held-out problems")
    parser.add_argument("--awl", type=Path, default=AWL_DEFAULT, help="AWL set (tool served)")
    parser.add_argument("--k", type=int, default=4, help="direct samples per problem")
    parser.add_argument("--threshold", type=float, default=0.5, help="easy at this accuracy")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=-1, help="-1: --epochs")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument(
        "--train-minutes", type=float, default=None, help="training budget (wall clock)"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument(
        "--max-length", type=int, default=4096, help="training tokens per example (the context)"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument(
        "--tua-data", type=Path, default=None, help="train on this TUA JSONL instead (smoke runs)"
    )
    parser.add_argument(
        "--teacher",
        default=None,
        help="train on the simulators' trajectories of these domains instead of served "
        "traces (pde,mechanics,climate,epidemiology); --train and --test count per domain",
    )
    parser.add_argument(
        "--tua-k",
        type=int,
        default=0,
        help="--teacher: train on AWL's TUA mix, easy/hard from K direct samples (0: WKD only)",
    )
    parser.add_argument("--targets", default=",".join(TARGET_MODULES), help="LoRA projections")
    parser.add_argument(
        "--ship",
        action="store_true",
        help="--teacher: copy the trained policy into adapters/shipped/<demo model>/policy",
    )
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if args.teacher:
        from bench import teacher_loop  # it builds on this module's evaluation

        result = teacher_loop.run(args)
        out = RESULTS_DIR / f"loop-teacher-{Path(str(result['model'])).name}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        for group, metrics in result["metrics"].items():
            _print_metrics(metrics, group)
        if args.ship:
            command = " ".join(["python -m bench.loop", *(argv or sys.argv[1:])])
            print(f"shipped in {teacher_loop.ship_policy(result, command)}")
    else:
        result = run(args)
        out = RESULTS_DIR / f"loop-{Path(str(result['model'])).name}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        _print_metrics(result["metrics"])
    print(f"wrote {out}")


def _print_metrics(metrics: dict[str, dict[str, float | None]], group: str = "") -> None:
    for name, values in metrics.items():
        label = f"{group} {name}".strip()
        print(f"{label:34s} " + "  ".join(f"{k}={_fmt(v)}" for k, v in values.items()))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
