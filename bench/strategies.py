"""What each strategy costs and buys, measured side by side in one run.

1. Cost per strategy (engine calls, prompt and generated tokens, wall time per
   question, one question at a time so latency is not queueing).
2. K=8 voting against one sample on the same questions. Goal: ≤ 2x the latency,
   thanks to one `n=8` engine request and prefix sharing.
3. ART when the Asker says no refine: refine tokens spent on those questions (goal 0).
4. With `--accuracy N`: accuracy of direct, samples:3, samples:5, attempts:2,
   samples:5,attempts:2, plan and attempts:2,art on N gsm_symbolic problems (seed
   1234, graded exactly), through `sciserve eval`'s harness, with tokens per question,
   SCoRe's Acc@t1/Acc@t2 and the Truster's position bias. Goal: neither samples:3 nor
   samples:5 below direct (one of the K candidates is the greedy one).

    python -m bench.strategies [--model tiny|demo|PATH] [--no-cost] [--questions 4]
                               [--max-tokens 64] [--accuracy 50] [--accuracy-max-tokens 512]
                               [-s direct -s samples:3 ...]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import httpx
import typer

from bench.common import bench_settings, write_result
from entrypoints.embedded import EmbeddedServer
from evaluation.datasets import load_items
from evaluation.harness import evaluate
from evaluation.metrics import mean, paired_bootstrap
from evaluation.runner import parse_strategy

COST_STRATEGIES = [
    "direct",
    "adaptive",
    "think",
    "attempts:2",
    "samples:8",
    "art",
    "few_shot:2",
    "samples:5,attempts:2",
]
ACCURACY_STRATEGIES = [
    "direct",
    "samples:3",
    "samples:5",
    "attempts:2",
    "samples:5,attempts:2",
    "plan",
    "attempts:2,art",
]
COST_SEED = 7  # questions for the cost table; the accuracy run uses seed 1234


async def _cost(
    client: httpx.AsyncClient, spec: str, problems: list[str], max_tokens: int
) -> dict[str, Any]:
    strategy = parse_strategy(spec).model_dump()
    rows = []
    for problem in problems:
        body = {
            "problem": problem,
            "strategy": strategy,
            "max_tokens": max_tokens,
            "return_trace": True,
        }
        started = time.perf_counter()
        response = await client.post("/solve", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{spec}: HTTP {response.status_code}: {response.text}")
        rows.append((time.perf_counter() - started, response.json()))
    usage = [body["usage"] for _, body in rows]
    skipped_refine_tokens = 0
    for _, body in rows:
        stages = {event["stage"]: event for event in body["trace"]}
        ask = stages.get("art_ask")
        if ask is not None and all(d == "skip" for d in ask["detail"]["decisions"]):
            refine = stages.get("art_refine")
            skipped_refine_tokens += (
                (refine["prompt_tokens"] + refine["completion_tokens"]) if refine else 0
            )
    return {
        "strategy": spec,
        "questions": len(rows),
        "engine_calls_per_question": statistics.mean(u["engine_calls"] for u in usage),
        "prompt_tokens_per_question": statistics.mean(u["prompt_tokens"] for u in usage),
        "generated_tokens_per_question": statistics.mean(
            u["completion_tokens"] + u["thought_tokens"] for u in usage
        ),
        "tool_tokens_per_question": statistics.mean(u["tool_tokens"] for u in usage),
        "seconds_per_question_p50": statistics.median(seconds for seconds, _ in rows),
        "stages": sorted({event["stage"] for _, body in rows for event in body["trace"]}),
        "art_refine_tokens_when_asker_skips": skipped_refine_tokens if spec == "art" else None,
    }


async def _cost_part(url: str, questions: int, max_tokens: int) -> dict[str, Any]:
    problems = [
        item.problem for item in load_items("gsm_symbolic", limit=questions, seed=COST_SEED)
    ]
    async with httpx.AsyncClient(base_url=url, timeout=3600) as client:
        await _cost(client, "direct", problems[:1], max_tokens)  # warm-up
        costs = [await _cost(client, spec, problems, max_tokens) for spec in COST_STRATEGIES]
        # K=8 against 1 sample, interleaved so drift hits both alike.
        single: list[float] = []
        voting: list[float] = []
        for problem in problems:
            for spec, sink in (("direct", single), ("samples:8", voting)):
                sink.append(
                    (await _cost(client, spec, [problem], max_tokens))["seconds_per_question_p50"]
                )
    by_name = {c["strategy"]: c for c in costs}
    return {
        "max_tokens": max_tokens,
        "cost": costs,
        "vote8_vs_single": {
            "single_p50_s": statistics.median(single),
            "vote8_p50_s": statistics.median(voting),
            "ratio": statistics.median(voting) / statistics.median(single),
            "goal": "<= 2",
            "engine_calls": by_name["samples:8"]["engine_calls_per_question"],
        },
        "art_refine_tokens_when_asker_skips": by_name["art"]["art_refine_tokens_when_asker_skips"],
    }


async def _accuracy_part(
    url: str,
    problems: int,
    max_tokens: int,
    specs: list[str],
    save: Callable[[dict[str, Any]], None],
) -> None:
    """In the order given (cheapest first by default), saved after each, so a cut-short
    run still reports."""
    items = load_items("gsm_symbolic", limit=problems, seed=1234)
    result: dict[str, Any] = {
        "dataset": f"gsm_symbolic seed 1234, {problems} problems",
        "max_tokens": max_tokens,
        "runs": [],
    }
    correct: dict[str, dict[str, bool]] = {}  # strategy -> question id -> correct
    for spec in specs:
        report = await evaluate(
            items,
            [spec],
            url,
            concurrency=16,
            max_tokens=max_tokens,
            timeout_s=3600,
            keep_rows=True,
        )
        for run in report["runs"]:
            rows = run.pop("items")
            correct[run["strategy"]] = {row["id"]: row["correct"] for row in rows}
        result["runs"] += report["runs"]
        if "direct" in correct:
            result["vs_direct"] = {
                other: _accuracy_difference(correct["direct"], by_id)
                for other, by_id in correct.items()
                if other != "direct"
            }
        save(result)


def _accuracy_difference(
    direct: dict[str, bool], other: dict[str, bool]
) -> dict[str, float | None]:
    """Accuracy minus direct's on the same questions, with a paired bootstrap 95%
    interval: on 50 problems one question is 0.02, so the point alone says little."""

    def accuracy(by_id: dict[str, bool]) -> Callable[[Sequence[str]], dict[str, float | None]]:
        return lambda draw: {"accuracy": mean([1.0 if by_id[i] else 0.0 for i in draw])}

    return paired_bootstrap(
        sorted(direct), accuracy(direct), accuracy(other), labels=("direct", "strategy")
    )["accuracy"]


def main(
    model: str = "tiny",
    cost: bool = True,
    questions: int = 4,
    max_tokens: int = 64,
    accuracy: int = 0,
    accuracy_max_tokens: int = 512,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            "-s",
            help="Repeatable: the accuracy run's strategies, in order. Default: "
            + ", ".join(ACCURACY_STRATEGIES),
        ),
    ] = None,
) -> None:
    """Cost goes to strategies-MODEL.json, accuracy to strategies-MODEL-accuracy.json."""
    specs = strategy or ACCURACY_STRATEGIES
    for spec in specs:
        parse_strategy(spec)  # a typo fails here, not after an hour of earlier strategies
    settings = bench_settings(model)
    name = f"strategies-{model if model in ('tiny', 'demo') else 'custom'}"

    def save_accuracy(partial: dict[str, Any]) -> None:
        write_result(f"{name}-accuracy", {"model": model, **partial})

    with EmbeddedServer(settings, ready_timeout_s=900) as server:
        if cost:
            result = asyncio.run(_cost_part(server.url, questions, max_tokens))
            write_result(name, {"model": model, **result})
        if accuracy:
            asyncio.run(
                _accuracy_part(server.url, accuracy, accuracy_max_tokens, specs, save_accuracy)
            )


if __name__ == "__main__":
    typer.run(main)
