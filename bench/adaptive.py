"""Early-stopped votes: what `stop` saves and what it costs, measured.

Three commands, all writing JSON under bench/results/:

- `record`: per question, the greedy sample with its confidence measures, then the full
  vote (`stop: "none"`) through the real service (HTTP /solve, the embedded default,
  with an auto policy that never trusts: entrypoints/calibrate.py `collect`), keeping
  every sample's answer and generated tokens. The expensive part, done once.
- `replay FILE`: offline, with the worker's own rule code (early_stop.should_stop,
  select.elect; entrypoints/calibrate.py `replay_vote`): (1) every stop rule on the
  recorded samples: samples used, generated tokens against `none`, answers that differ
  from the full vote's, accuracy against `none` with a paired bootstrap 95% interval;
  (2) `auto`: its threshold fitted on the first half of the questions (`fit`, as
  `sciserve calibrate` does) and measured on the held-out second half against
  `samples:5` (the first five samples, seeds base+0..4) and direct (the greedy one),
  with intervals, and the accuracy-against-tokens plot. A live K=16 run over 100
  problems is hours on two cores; the replay is how its figures are read.
- `live`: settled against none on the same questions and seeds, interleaved, live:
  identical answers, generated tokens and wall time side by side.

    python -m bench.adaptive record --model demo --samples 8 --problems 60
    python -m bench.adaptive replay bench/results/adaptive-record.json
    python -m bench.adaptive live --model demo --samples 8 --problems 8
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import track

from bench.common import RESULTS_DIR, bench_settings, write_result
from contract.schemas import ConfidenceStop, StopRule
from entrypoints.calibrate import (
    NEVER_TRUST,
    collect,
    fit,
    plot,
    policy_outcome,
    replay_vote,
    row_same,
    write_policy,
)
from entrypoints.embedded import EmbeddedServer
from evaluation.datasets import Item, load_items
from evaluation.metrics import mean, paired_bootstrap
from workers.strategies.confidence import AutoPolicy
from workers.strategies.early_stop import default_window
from workers.traces import TraceSink
from workers.traces import configure as configure_traces

app = typer.Typer(add_completion=False, help=__doc__)
DATASET_SEED = 1234


def _body(item: Item, samples: int, stop: Any, seed: int, max_tokens: int) -> dict[str, Any]:
    return {
        "problem": item.problem,
        "reference": item.reference,
        "answer_type": item.answer_type,
        "options": item.options,
        "strategy": {"tools": "never", "samples": samples, "stop": stop},
        "seed": seed,
        "max_tokens": max_tokens,
        "return_trace": True,
    }


async def _solve(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    response = await client.post("/solve", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text}")
    return response.json(), time.perf_counter() - started


def _generated(body: dict[str, Any]) -> int:
    usage = body["usage"]
    return int(usage["completion_tokens"] + usage["thought_tokens"])


@app.command()
def record(
    model: str = "demo",
    samples: int = 8,
    problems: int = 60,
    max_tokens: int = 384,
    out: Path = RESULTS_DIR / "adaptive-record.json",
    traces: Annotated[
        Path | None,
        typer.Option(help="also keep each job's trace record (every sample's text) here"),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="questions in flight at once (same samples; seconds then queue)")
    ] = 1,
) -> None:
    """The greedy confidence and the full vote per question, saved as it goes. With
    `--traces`, the samples' texts are kept too: they are the Truster's training pairs
    (`sciserve data build truster-pairs`)."""
    items = load_items("gsm_symbolic", limit=problems, seed=DATASET_SEED)
    rows: list[dict[str, Any]] = []
    if out.exists():  # resume: a long recording survives a stop (same seeds per question)
        before = json.loads(out.read_text())
        if (before["samples"], before["max_tokens"]) != (samples, max_tokens):
            raise typer.BadParameter(f"{out} was recorded with other samples or max_tokens")
        rows = before["rows"]
        print(f"resuming {out}: {len(rows)} questions recorded")
    with tempfile.TemporaryDirectory() as folder:
        policy = Path(folder) / "never-trust.json"
        policy.write_text(json.dumps(NEVER_TRUST))
        settings = bench_settings(model, max_model_len=4096, auto_policy=policy)
        if traces is not None:  # the embedded worker runs here: its sink is this process's
            configure_traces(TraceSink(traces))
        with (
            EmbeddedServer(settings) as server,
            httpx.Client(base_url=server.url, timeout=3600) as client,
        ):
            name = settings.demo_model if model == "demo" else model

            order = {item.id: index for index, item in enumerate(items)}

            def save(row: dict[str, Any]) -> None:
                rows.append(row)
                rows.sort(key=lambda recorded: order.get(recorded["id"], len(order)))
                _save(out, name, samples, max_tokens, rows)
                print(f"{len(rows)}/{len(items)} {row['id']}: {row['seconds']:.0f} s", flush=True)

            done = frozenset(row["id"] for row in rows)
            collect(client, items, samples, max_tokens, {"tools": "never"}, save, done, concurrency)
    print(f"recorded {len(rows)} votes of {samples} samples into {out}")


def _save(out: Path, model: str, samples: int, max_tokens: int, rows: list[Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "dataset": f"gsm_symbolic seed {DATASET_SEED}",
        "model": model,
        "samples": samples,
        "max_tokens": max_tokens,
        "rows": rows,
    }
    out.write_text(json.dumps(payload, indent=1))


def _rules(samples: int) -> dict[str, tuple[StopRule, int]]:
    """Each rule with its window. `settled` is lossless at any window; smaller windows
    start fewer samples that a decided vote then aborts (fewer tokens) but take more
    decode steps (latency), down to one sample at a time."""
    majority = default_window(samples)
    settled: dict[str, tuple[StopRule, int]] = {
        f"settled w={window}": ("settled", window)
        for window in sorted({samples, majority, 2, 1}, reverse=True)
        if window <= samples
    }
    return {
        "none": ("none", samples),
        **settled,
        f"confidence 0.95 w={majority}": (ConfidenceStop(confidence=0.95), majority),
        f"confidence 0.9 w={majority}": (ConfidenceStop(confidence=0.9), majority),
    }


def _rule_table(rows: list[dict[str, Any]], samples: int) -> dict[str, dict[str, Any]]:
    """Every stop rule on the first `samples` recorded samples of each vote (seeds
    base+0.., as a vote of that size would draw them)."""
    per_rule: dict[str, dict[str, Any]] = {}
    correct: dict[str, dict[str, bool]] = {}
    for name, (rule, window) in _rules(samples).items():
        results = []
        for row in rows:
            same, is_right = row_same(row)
            answers, lengths = row["answers"][:samples], row["generated_tokens"][:samples]
            full = replay_vote(answers, lengths, "none", samples, same).answer
            played = replay_vote(answers, lengths, rule, window, same)
            differs = played.answer != full and not (
                played.answer is not None and full is not None and same(played.answer, full)
            )
            results.append((row, played, is_right(played.answer), differs))
        correct[name] = {row["id"]: ok for row, _, ok, _ in results}
        per_rule[name] = {
            "window": window,
            "samples_used_mean": statistics.mean(p.used for _, p, _, _ in results),
            "generated_tokens": sum(p.tokens for _, p, _, _ in results),
            "decode_steps": sum(p.steps for _, p, _, _ in results),
            "accuracy": mean([1.0 if ok else 0.0 for _, _, ok, _ in results]),
            "answers_differing_from_full_vote": sum(d for *_, d in results),
        }
    base = per_rule["none"]
    for name, figures in per_rule.items():
        figures["tokens_vs_none"] = figures["generated_tokens"] / base["generated_tokens"]
        figures["samples_saved_share"] = 1 - figures["samples_used_mean"] / samples
        figures["steps_vs_none"] = figures["decode_steps"] / base["decode_steps"]
        if name != "none":
            figures["accuracy_vs_none"] = _paired(correct["none"], correct[name])
    return per_rule


@app.command()
def replay(
    record_file: Path,
    out: Path = RESULTS_DIR / "adaptive-replay.json",
    folds: Annotated[int, typer.Option(help="auto's cross-fitting folds")] = 5,
    policy_out: Annotated[
        Path | None,
        typer.Option(help="write the policy fitted on every question here (the shipped one)"),
    ] = None,
) -> None:
    """Every stop rule on the recorded votes (at K=8 and at the recorded K), then auto
    cross-fitted: each question answered by a threshold fitted without it."""
    data = json.loads(record_file.read_text())
    rows, recorded = data["rows"], data["samples"]
    sizes = sorted({min(8, recorded), recorded})
    tables = {f"samples:{k}": _rule_table(rows, k) for k in sizes}
    payload = {
        "record": str(record_file),
        "dataset": data["dataset"],
        "model": data["model"],
        "samples": recorded,
        "questions": len(rows),
        "rules": tables,
        "auto": _auto(rows, folds, out.with_suffix(".png")),
    }
    path = write_result(out.stem, payload)
    if policy_out is not None:
        source = {
            "record": record_file.name,
            "dataset": data["dataset"],
            "model": data["model"],
            "samples": AUTO_SAMPLES,
            "questions": len(rows),
        }
        write_policy(payload["auto"]["shipped_policy"], policy_out, source)
        print(f"auto policy written to {policy_out}")
    for size, per_rule in tables.items():
        for name, figures in per_rule.items():
            interval = figures.get("accuracy_vs_none") or {}
            print(
                f"{size:10} {name:24} used {figures['samples_used_mean']:.2f}  "
                f"tokens x{figures['tokens_vs_none']:.3f}  steps x{figures['steps_vs_none']:.3f}  "
                f"acc {figures['accuracy']:.3f} {_interval(interval)}  "
                f"differ {figures['answers_differing_from_full_vote']}"
            )
    auto = payload["auto"]
    for name in ("direct", "samples:5", "auto"):
        arm = auto["held_out"][name]
        print(f"held-out {name:10} acc {arm['accuracy']:.3f}  tokens/q {arm['tokens']:.0f}")
    print(
        f"auto tokens x{auto['tokens_auto_vs_samples5']:.3f} of samples:5; accuracy vs "
        f"samples:5 {_interval(auto['auto_vs_samples5'])}; wrote {path}"
    )


def _interval(figures: dict[str, Any]) -> str:
    if not figures or figures.get("diff") is None:
        return ""
    low, high = figures["ci95_low"], figures["ci95_high"]
    return f"({figures['diff']:+.3f} [{low:+.3f}, {high:+.3f}])"


AUTO_SAMPLES = 5


def _auto(rows: list[dict[str, Any]], folds: int, picture: Path) -> dict[str, Any]:
    """auto, cross-fitted: the questions split into `folds`; each fold is answered with
    the threshold fitted on the others (`fit`, as `sciserve calibrate` does), so every
    question is held out from the policy that answers it. The policy fitted on all of
    them is the one to ship (`shipped_policy`)."""
    arms: dict[str, dict[str, bool]] = {"direct": {}, "samples:5": {}, "auto": {}}
    tokens: dict[str, list[int]] = {name: [] for name in arms}
    thresholds = []
    for fold in range(folds):
        held_out = rows[fold::folds]
        development = [row for index, row in enumerate(rows) if index % folds != fold]
        policy = fit(development, AUTO_SAMPLES)
        measure, threshold = policy["measure"], policy["threshold"]
        thresholds.append({"measure": measure, "threshold": threshold})
        for row in held_out:
            sure = AutoPolicy(measure, threshold).passes((row["confidences"] or {}).get(measure))
            for name, outcome in (
                ("direct", policy_outcome(row, True, AUTO_SAMPLES)),
                ("samples:5", _full_vote(row, AUTO_SAMPLES)),
                ("auto", policy_outcome(row, sure, AUTO_SAMPLES)),
            ):
                arms[name][row["id"]] = outcome[0]
                tokens[name].append(outcome[1])
    held: dict[str, dict[str, float]] = {
        name: {
            "accuracy": statistics.mean([1.0 if ok else 0.0 for ok in arms[name].values()] or [0]),
            "tokens": statistics.mean(tokens[name] or [0]),
        }
        for name in arms
    }
    shipped = fit(rows, AUTO_SAMPLES)
    plot(
        {name: (figures["tokens"], figures["accuracy"]) for name, figures in held.items()},
        shipped["curves"][shipped["measure"]],
        picture,
    )
    return {
        "folds": folds,
        "fold_policies": thresholds,
        "shipped_policy": shipped,
        "held_out_questions": len(rows),
        "held_out": held,
        "tokens_auto_vs_samples5": held["auto"]["tokens"] / max(held["samples:5"]["tokens"], 1),
        "auto_vs_samples5": _paired(arms["samples:5"], arms["auto"]),
        "auto_vs_direct": _paired(arms["direct"], arms["auto"]),
        "plot": str(picture),
    }


def _full_vote(row: dict[str, Any], samples: int) -> tuple[bool, int]:
    """samples:K as served with stop none: all K to the end."""
    same, is_right = row_same(row)
    played = replay_vote(
        row["answers"][:samples], row["generated_tokens"][:samples], "none", samples, same
    )
    return is_right(played.answer), played.tokens


def _paired(first: dict[str, bool], second: dict[str, bool]) -> dict[str, float | None]:
    def accuracy(by_id: dict[str, bool]) -> Callable[[Sequence[str]], dict[str, float | None]]:
        return lambda draw: {"accuracy": mean([1.0 if by_id[i] else 0.0 for i in draw])}

    return paired_bootstrap(
        sorted(first), accuracy(first), accuracy(second), labels=("none", "rule")
    )["accuracy"]


@app.command()
def live(
    model: str = "demo",
    samples: int = 8,
    problems: int = 8,
    max_tokens: int = 384,
    stop: Annotated[str, typer.Option(help="settled, or a confidence like 0.95")] = "settled",
) -> None:
    """`stop` against none, live, same questions and seeds, interleaved."""
    rule: Any = stop if stop in ("settled", "none") else {"confidence": float(stop)}
    items = load_items("gsm_symbolic", limit=problems, seed=DATASET_SEED + 1)
    pairs: list[dict[str, Any]] = []
    with EmbeddedServer(bench_settings(model, max_model_len=4096)) as server:

        async def run() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=3600) as client:
                await _solve(client, _body(items[0], 1, "none", 0, 16))  # warm-up
                for index, item in enumerate(track(items, description=f"{stop} vs none")):
                    full, full_s = await _solve(
                        client, _body(item, samples, "none", index, max_tokens)
                    )
                    early, early_s = await _solve(
                        client, _body(item, samples, rule, index, max_tokens)
                    )
                    pairs.append(
                        {
                            "id": item.id,
                            "none": {"answer": full["answer"], "tokens": _generated(full),
                                     "seconds": full_s, "correct": full["correct"]},
                            "early": {"answer": early["answer"], "tokens": _generated(early),
                                      "seconds": early_s, "correct": early["correct"],
                                      "stop": early["trace"][-1]["detail"]["stop"]},
                        }
                    )  # fmt: skip

        asyncio.run(run())
    tokens = sum(p["early"]["tokens"] for p in pairs) / sum(p["none"]["tokens"] for p in pairs)
    seconds = sum(p["early"]["seconds"] for p in pairs) / sum(p["none"]["seconds"] for p in pairs)
    payload = {
        "model": model,
        "samples": samples,
        "stop": rule,
        "questions": len(pairs),
        "identical_answers": sum(p["early"]["answer"] == p["none"]["answer"] for p in pairs),
        "tokens_vs_none": tokens,
        "wall_time_vs_none": seconds,
        "samples_used_mean": statistics.mean(p["early"]["stop"]["used"] for p in pairs),
        "pairs": pairs,
    }
    path = write_result(f"adaptive-live-{stop}", payload)
    print(
        f"{stop} vs none on {len(pairs)}: identical {payload['identical_answers']}, "
        f"tokens x{tokens:.3f}, wall time x{seconds:.3f}, "
        f"samples used {payload['samples_used_mean']:.2f}/{samples}; wrote {path}"
    )


if __name__ == "__main__":
    app()
