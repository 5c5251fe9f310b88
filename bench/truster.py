"""The Truster, trained on verifiable pairs and measured against the base Truster.

One command, all steps (`run`):
1. pairs: `sciserve data build truster-pairs` on vote traces (`bench.adaptive record
   --traces DIR` writes them): two sampled solutions of one problem, exactly one
   correct, both orders; a quarter of the problems (by a hash of their text) are held
   out and never trained on;
2. SFT of a truster LoRA on the served model (`training.trainer`), loss curve (PNG);
3. the adapter saved as bf16 safetensors (what the repository ships);
4. pick accuracy on the held-out pairs, base Truster (no adapter) against trained, in one
   vLLM engine, read with the worker's own parser (`workers.strategies.art.parse_truster`):
   accuracy with a paired bootstrap 95% interval resampled by problem (a problem's pairs
   are not independent), unreadable replies, and position bias (share of "Solution 1"
   picks; 0.5 is none, since every pair is shown in both orders).

    .venv/bin/python -m bench.truster run --traces /tmp/rec/traces --steps 60
    .venv/bin/python -m bench.truster evaluate --pairs heldout.jsonl --adapter DIR
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.common import RESULTS_DIR, bench_settings, write_result
from bench.shipping import loss_plot, ship_adapter, training_card
from contract.settings import Settings
from training.build import build
from training.trainer import TrainConfig, register, save_bf16, train

app = typer.Typer(add_completion=False, help=__doc__)
MAX_TOKENS = 256  # the base Truster explains before it picks; the trained one does not


def _engine(settings: Settings, adapter: Path) -> Any:
    """One engine serving the base model and `adapter` as the Truster (registered and
    validated as `sciserve train --registry` does)."""
    from workers.engines.factory import build_engine, resolve_model

    registry = Path(tempfile.mkdtemp(prefix="truster-")) / "registry.yaml"
    register(
        registry, "truster", adapter, resolve_model(settings),
        max_lora_rank=settings.max_lora_rank,
    )  # fmt: skip
    return build_engine(settings.model_copy(update={"adapter_registry": registry}))


async def _picks(engine: Any, examples: Sequence[dict[str, Any]], role: str | None) -> list[str]:
    from workers.engines.base import GenerationRequest, Sampling

    requests = [
        GenerationRequest(
            messages=example["prompt"],
            role=role,
            sampling=Sampling(temperature=0.0, max_tokens=MAX_TOKENS),
        )
        for example in examples
    ]
    completions = await engine.generate(requests)
    return [completion.texts[0] for completion in completions]


def _arm(examples: Sequence[dict[str, Any]], texts: Sequence[str]) -> list[dict[str, Any]]:
    from workers.strategies.art import parse_truster

    rows = []
    for example, text in zip(examples, texts, strict=True):
        picked = parse_truster(text, 2)
        target = int(example["completion"][0]["content"].rsplit(" ", 1)[1]) - 1
        rows.append(
            {
                "problem": example["meta"]["problem"],
                "picked": None if picked is None else picked + 1,
                "correct": picked == target,
                "reply": text[:300],
            }
        )
    return rows


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    readable = [r for r in rows if r["picked"] is not None]
    return {
        "pick_accuracy": sum(r["correct"] for r in rows) / len(rows),
        "unreadable": 1 - len(readable) / len(rows),
        "picks_solution_1": sum(r["picked"] == 1 for r in readable) / max(len(readable), 1),
    }


def _paired_by_problem(
    base: Sequence[dict[str, Any]], trained: Sequence[dict[str, Any]], draws: int = 2000
) -> dict[str, float]:
    """trained - base pick accuracy, 95% interval over problems drawn with replacement."""
    by_problem: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for first, second in zip(base, trained, strict=True):
        by_problem[first["problem"]].append((first["correct"], second["correct"]))
    problems = sorted(by_problem)
    rng = random.Random(0)

    def diff(drawn: Sequence[str]) -> float:
        pairs = [pair for problem in drawn for pair in by_problem[problem]]
        return sum(t - b for b, t in pairs) / len(pairs)

    values = sorted(diff([rng.choice(problems) for _ in problems]) for _ in range(draws))
    return {
        "diff": diff(problems),
        "low": values[int(0.025 * draws)],
        "high": values[int(0.975 * draws) - 1],
        "problems": len(problems),
    }


def evaluate_pairs(settings: Settings, pairs: Path, adapter: Path) -> dict[str, Any]:
    """Base and trained Truster on the same held-out pairs, in one engine."""
    examples = [json.loads(line) for line in pairs.read_text().splitlines() if line.strip()]
    engine = _engine(settings, adapter)

    async def go() -> tuple[list[str], list[str]]:
        await engine.start()
        try:
            return await _picks(engine, examples, None), await _picks(engine, examples, "truster")
        finally:
            await engine.close()

    base_texts, trained_texts = asyncio.run(go())
    base, trained = _arm(examples, base_texts), _arm(examples, trained_texts)
    return {
        "examples": len(examples),
        "base": _summary(base),
        "trained": _summary(trained),
        "trained_vs_base": _paired_by_problem(base, trained),
        "rows": {"base": base, "trained": trained},
    }


@app.command()
def run(
    traces: Annotated[list[Path], typer.Option(help="Vote trace folders or files.")],
    model: str = "demo",
    out: Path = RESULTS_DIR / "truster-adapter",
    steps: int = 60,
    batch_size: int = 4,
    rank: int = 8,
    targets: str = "q_proj,v_proj",
    per_problem: int = 6,
    learning_rate: float = 2e-4,
    seed: int = 0,
    ship: Annotated[
        bool, typer.Option(help="copy the adapter into adapters/shipped/<demo model>/truster")
    ] = False,
) -> None:
    """Pairs → SFT → bf16 adapter → base vs trained on held-out pairs (→ shipped)."""
    from workers.engines.factory import resolve_model

    settings = bench_settings(model, max_model_len=4096)
    base_model = resolve_model(settings)
    data = out.parent / "truster-pairs"
    train_set, _ = build(
        "truster-pairs", traces, data / "train.jsonl", seed, split="train", per_problem=per_problem
    )
    held, _ = build(
        "truster-pairs", traces, data / "heldout.jsonl", seed, split="heldout", per_problem=4
    )
    print(f"pairs: {len(train_set.examples)} train examples, {len(held.examples)} held out")
    config = TrainConfig(
        "sft", "truster", data / "train.jsonl", out, base_model, rank=rank,
        max_steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        max_length=1536, target_modules=targets.split(","),
    )  # fmt: skip

    def step(done: int, total: int, loss: float | None) -> None:
        print(f"step {done}/{total} loss {loss:.4f}", flush=True)

    report = train(config, step)
    size = save_bf16(out)
    figures = evaluate_pairs(settings, data / "heldout.jsonl", out)
    payload: dict[str, Any] = {
        "model": base_model,
        "train": {
            "examples": len(train_set.examples),
            "counts": train_set.counts,
            "steps": report.steps,
            "seconds": report.seconds,
            "first_loss": report.first_loss,
            "last_loss": report.last_loss,
            "rank": rank,
            "targets": targets,
            "adapter_bytes": size,
        },
        "heldout": {"counts": held.counts, **figures},
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "command": " ".join(["python -m bench.truster", *sys.argv[1:]]),
        "loss_plot": str(loss_plot(out, out / "loss.png")),
    }
    path = write_result("truster", payload)
    _print(payload["heldout"])
    if ship:
        print(f"shipped in {ship_truster(out, payload, path)}")
    print(f"trained {report.steps} steps in {report.seconds:.0f} s; {size} bytes; wrote {path}")


def ship_truster(adapter: Path, payload: dict[str, Any], result: Path) -> Path:
    """The Truster with its model card into adapters/shipped/<demo model>/truster."""
    train_figures, held = payload["train"], payload["heldout"]
    card = {
        "method": "SFT (completion only) on verifiable pairs: two sampled solutions of one "
        "gsm_symbolic problem, exactly one correct, both orders (data build truster-pairs)",
        "data": {"train": train_figures["counts"], "heldout": held["counts"]},
        **training_card(
            train_figures,
            batch_size=payload["batch_size"],
            learning_rate=payload["learning_rate"],
            seed=payload["seed"],
        ),
        "heldout": {arm: held[arm] for arm in ("base", "trained")}
        | {"trained_vs_base": held["trained_vs_base"], "examples": held["examples"]},
        "command": payload["command"],
        "result_file": result.name,
    }
    return ship_adapter(adapter, "truster", Settings().demo_model, card)


def _print(figures: dict[str, Any]) -> None:
    for arm in ("base", "trained"):
        s = figures[arm]
        print(
            f"{arm:8} pick accuracy {s['pick_accuracy']:.3f}  unreadable {s['unreadable']:.3f}  "
            f"picks Solution 1 {s['picks_solution_1']:.3f}"
        )
    d = figures["trained_vs_base"]
    print(f"trained - base {d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")


@app.command()
def evaluate(pairs: Path, adapter: Path, model: str = "demo") -> None:
    """Base vs trained Truster on pairs already built."""
    figures = evaluate_pairs(bench_settings(model, max_model_len=4096), pairs, adapter)
    write_result("truster-evaluate", figures)
    _print(figures)


if __name__ == "__main__":
    app()
