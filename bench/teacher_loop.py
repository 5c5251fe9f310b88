"""The policy trained on the simulators' trajectories (`python -m bench.loop --teacher`).

AWL's World Knowledge Distillation takes its hard-problem solutions from a stronger
solver that uses the tools; for AWL's scientific domains that solver is the tool server
itself (`sciserve data build wkd-teacher`). One run:

1. teacher data: `--train` generated training problems per domain, solved on the real
   tool servers in the served AWL layout (the call, then the answer after the result);
2. held-out problems: AWL's own test sets for PDE and MuJoCo (never trained on: the
   builder's leak check refuses any overlap), generated held-out sets (another split,
   disjoint parameters) for climate and epidemiology;
3. SFT of a policy LoRA on the teacher data (WKD), or with `--tua-k K` on AWL's TUA mix
   of it with the problems the served base model already answers directly (K samples
   each), saved in bf16, its loss curve drawn;
4. base (no policy adapter) and trained (hot-loaded) on the held-out problems in one
   embedded service: direct (each arm's own easy/hard) and adaptive in AWL's layout;
   accuracy, TUA, tool-call rate on easy and on hard, tokens, pooled and per domain,
   each with a paired bootstrap 95% interval of trained - base;
5. `--ship`: the adapter, its model card (data, steps, seed, figures, and the layout it
   was trained on, which the service then serves by default) and the registry entry into
   `adapters/shipped/<demo model>/policy`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, bench_settings
from bench.loop import (
    ADMIN_KEY,
    Arm,
    bootstrap,
    evaluate,
    run_items_direct_k,
    served_model,
    unload_policy,
)
from bench.shipping import loss_plot, ship_adapter, training_card
from entrypoints.embedded import EmbeddedServer
from entrypoints.teacher.build import AWL_DATA, TeacherConfig, build_wkd_teacher
from evaluation.datasets import Item, load_items
from training.awl import build_tua
from training.records import read_records
from training.trainer import TrainConfig, hot_load, save_bf16, train
from workers import traces

DOMAINS = ("pde", "mechanics", "climate", "epidemiology")
AWL_TEST_FILES = {"pde": "pde.json", "mechanics": "mujoco.json"}  # AWL's shared test sets


def teacher_data(
    domains: list[str], per_domain: int, seed: int, work: Path, log: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    """Every domain's teacher examples, shuffled into one SFT file; the cards by domain."""
    examples: list[dict[str, Any]] = []
    cards: dict[str, Any] = {}
    for domain in domains:
        out = work / f"wkd-teacher-{domain}.jsonl"
        dataset, _ = build_wkd_teacher(
            TeacherConfig(domain, per_domain, seed, out, split="train"), log=log
        )
        examples += dataset.examples
        cards[domain] = {
            k: dataset.params[k]
            for k in ("generated", "kept", "dropped", "turns_over_budget", "tokens_per_example")
        } | {
            "examples": len(dataset.examples),
            "leak_check": _portable(dataset.params["leak_check"]),
        }
        log(f"{domain}: {cards[domain]}")
    random.Random(seed).shuffle(examples)
    data = work / "wkd-teacher.jsonl"
    data.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    return data, cards


def _portable(leak_check: dict[str, Any] | None) -> dict[str, Any] | None:
    """The leak check as a card states it: the test sets by name, not this machine's path."""
    if leak_check is None:
        return None
    return {**leak_check, "data": f"AWL's test sets ({Path(leak_check['data']).name}/)"}


def heldout_items(
    domains: list[str], per_domain: int, seed: int, work: Path, log: Callable[[str], None]
) -> list[Item]:
    """AWL's test sets where they exist for the domain, else a generated held-out set."""
    items: list[Item] = []
    for domain in domains:
        if domain in AWL_TEST_FILES:
            pool = load_items(str(AWL_DATA / AWL_TEST_FILES[domain]))
            items += random.Random(seed).sample(pool, min(per_domain, len(pool)))
            continue
        out = work / f"heldout-{domain}.jsonl"
        config = TeacherConfig(domain, per_domain, seed, out, split="heldout", max_tokens=None)
        build_wkd_teacher(config, log=log)
        items += load_items(str(out.with_suffix(".problems.jsonl")))
    return items


def tua_data(
    url: str,
    domains: list[str],
    work: Path,
    args: argparse.Namespace,
    log: Callable[[str], None],
) -> tuple[Path, dict[str, int]]:
    """AWL §3.2 on the teacher's problems: the served base model answers each training
    problem directly `--tua-k` times (every sample runs); a problem it solves at least
    half the time is easy (the teacher's prompt answered directly with `answer_question`),
    the rest hard (the teacher's trajectory). Turns longer than `--max-length` are left
    to the trainer, which drops examples whose completion it would cut."""
    records = [work / f"wkd-teacher-{d}.records.jsonl" for d in domains]
    items = [
        item for d in domains for item in load_items(str(work / f"wkd-teacher-{d}.problems.jsonl"))
    ]
    trace_dir = work / "direct-traces"
    shutil.rmtree(trace_dir, ignore_errors=True)
    traces.configure(traces.TraceSink(trace_dir))
    try:
        asyncio.run(run_items_direct_k(url, items, args.tua_k, args))
    finally:
        traces.configure(None)
    dataset = build_tua(read_records([*records, trace_dir]), seed=args.seed)
    data = work / "tua.jsonl"
    dataset.write(data, [*records, trace_dir], args.seed)
    log(f"TUA data: {dataset.counts} -> {len(dataset.examples)} examples")
    return data, dataset.counts


def train_policy(
    args: argparse.Namespace, data: Path, base_model: str, work: Path, log: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    started = time.perf_counter()
    report = train(
        TrainConfig(
            "sft", "policy", data, work / "policy", base_model, rank=args.rank,
            learning_rate=args.lr, max_steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
            target_modules=args.targets.split(","),
            max_seconds=None if args.train_minutes is None else args.train_minutes * 60,
        ),
        lambda step, total, loss: log(f"step {step}/{total} loss {loss:.4f}"),
    )  # fmt: skip
    size = save_bf16(report.adapter)
    return report.adapter, {
        "steps": report.steps,
        "examples_seen": report.steps * args.batch_size,
        "seconds": round(time.perf_counter() - started, 1),
        "first_loss": report.first_loss,
        "last_loss": report.last_loss,
        "rank": args.rank,
        "targets": args.targets,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "adapter_bytes": size,
        "loss_plot": loss_plot(report.adapter, RESULTS_DIR / "policy-loss.png").name,
    }


def by_domain(
    base: Arm, trained: Arm, items: list[Item], seed: int
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Pooled and per-domain paired intervals (bench.loop's metrics)."""
    groups: dict[str, list[str]] = {"pooled": [i.id for i in items]}
    for item in items:
        groups.setdefault(str(item.domain), []).append(item.id)
    return {name: bootstrap(base, trained, ids, seed=seed) for name, ids in groups.items()}


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    work = Path(args.workdir or RESULTS_DIR / "teacher-loop")
    work.mkdir(parents=True, exist_ok=True)
    domains = [d.strip() for d in args.teacher.split(",") if d.strip()]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data, cards = teacher_data(domains, args.train, args.seed, work, log)
    items = heldout_items(domains, args.test, args.seed + 1, work, log)
    timings["data_s"] = round(time.perf_counter() - started, 1)
    log(f"{sum(c['examples'] for c in cards.values())} training examples; {len(items)} held out")
    overrides: dict[str, Any] = {"admin_key": ADMIN_KEY, "default_max_tokens": args.max_tokens}
    if args.model == "demo":
        overrides["demo_model"] = args.demo_model
    settings = bench_settings(args.model, shipped_adapters=False, **overrides)
    tua_counts: dict[str, int] | None = None
    with EmbeddedServer(settings, ready_timeout_s=1800) as server:
        base_model = served_model(server)
        unload_policy(server.url)
        if args.tua_k > 0:  # WKD's trajectories mixed with what the base already solves
            started = time.perf_counter()
            data, tua_counts = tua_data(server.url, domains, work, args, log)
            timings["tua_data_s"] = round(time.perf_counter() - started, 1)
        adapter, training = train_policy(args, data, base_model, work, log)
        timings["train_s"] = training["seconds"]
        started = time.perf_counter()
        arms = {"base": _evaluate(server.url, items, args)}
        hot_load(server.url, ADMIN_KEY, "policy", adapter, base_model)
        arms["trained"] = _evaluate(server.url, items, args)
    timings["evaluate_s"] = round(time.perf_counter() - started, 1)
    return {
        "model": args.demo_model if args.model == "demo" else args.model,
        "base_model": base_model,
        "domains": domains,
        "teacher_data": cards,
        "tua_data": tua_counts,
        "heldout": {
            d: sum(1 for i in items if i.domain == d) for d in {str(i.domain) for i in items}
        },
        "training": training,
        "adapter": str(adapter),
        "metrics": by_domain(arms["base"], arms["trained"], items, args.seed),
        "timings_s": timings,
        "seed": args.seed,
    }


def _evaluate(url: str, items: list[Item], args: argparse.Namespace) -> Arm:
    return asyncio.run(evaluate(url, items, args.max_tokens, args.concurrency, prompt_style="awl"))


def ship_policy(result: dict[str, Any], command: str) -> Path:
    """The trained policy into adapters/shipped/<demo model>/policy with its card."""
    training = result["training"]
    card = {
        "method": "SFT (completion only) on the simulators' tool trajectories (AWL §3.1 "
        "WKD, the tool server as the teacher; data build wkd-teacher)",
        # trained on AWL's layout for these domains: served with it there by default
        "prompt_style": "awl",
        "prompt_domains": result["domains"],
        "data": result["teacher_data"],
        "heldout": result["heldout"],
        **training_card(
            training,
            batch_size=training["batch_size"],
            learning_rate=training["learning_rate"],
            seed=result["seed"],
        ),
        "figures": {
            group: {name: metrics[name] for name in ("accuracy", "tua", "tool_rate_hard")}
            for group, metrics in result["metrics"].items()
        },
        "command": command,
    }
    return ship_adapter(Path(result["adapter"]), "policy", result["model"], card)
