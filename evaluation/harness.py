"""`sciserve eval`: run strategies over a dataset, print and write the metrics, plot.

Each strategy runs over every item; a strategy that may use tools also gets the
no-tool run that splits questions into Easy and Hard for TUA (reused when `direct` is
among the strategies, made once otherwise).

Against an OpenAI-compatible URL (`…/v1`) each model name is a run instead
(evaluation/openai_runner.py): a plain `vllm serve`, a proxy, or sciserve's presets,
graded and reported alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contract.schemas import Strategy
from evaluation.datasets import Item
from evaluation.metrics import Metrics, paired_bootstrap
from evaluation.openai_runner import ChatOptions, is_openai_url, openai_client, run_chat_items
from evaluation.runner import Row, item_rule, parse_strategy, run_items, summarize

BASELINE = Strategy(tools="never")
Arm = dict[str, str]  # role → adapter name, as a request's `adapters`
RunRows = tuple[list[Row], float]
COMPARED = ("accuracy", "tua", "tool_use_rate", "tokens_per_question")


async def evaluate(
    items: list[Item],
    specs: list[str],
    url: str,
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
    headers: dict[str, str] | None = None,
    keep_rows: bool = False,
    arms: list[Arm] | None = None,
) -> dict[str, Any]:
    """The report: the first strategy's metrics at the top level (DESIGN §2), its
    rows under `items`, and every strategy under `runs` (with its rows too when
    `keep_rows`, for the lm-eval files). With `arms` (adapter choices such as
    {"policy": "base"} and {"policy": "trained"}), every strategy runs once per arm on
    the same questions, and `comparisons` holds each later arm against the first."""
    strategies = [(spec, parse_strategy(spec)) for spec in specs]
    grading = sorted({item_rule(item) for item in items})
    runs: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    cache: dict[str, tuple[list[Row], float]] = {}
    gen_kwargs = {"max_tokens": max_tokens, "timeout_s": timeout_s}
    timeout = httpx.Timeout(None, connect=10.0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as client:
        with _progress() as progress:

            async def rows_for(label: str, strategy: Strategy, arm: Arm | None) -> RunRows:
                key = f"{strategy.model_dump_json()} {arm_label(arm)}"
                if key not in cache:
                    task = progress.add_task(label, total=len(items))
                    started = time.perf_counter()
                    rows = await run_items(
                        client,
                        items,
                        strategy,
                        concurrency=concurrency,
                        max_tokens=max_tokens,
                        timeout_s=timeout_s,
                        adapters=arm,
                        on_done=lambda _row: progress.advance(task),
                    )
                    cache[key] = (rows, time.perf_counter() - started)
                return cache[key]

            for spec, strategy in strategies:
                arm_rows: list[tuple[Arm | None, list[Row], list[Row] | None]] = []
                choices: list[Arm | None] = list(arms) if arms else [None]
                for arm in choices:
                    label = f"{spec} {arm_label(arm)}".rstrip()
                    rows, wall_s = await rows_for(label, strategy, arm)
                    baseline = None
                    if strategy.tools != "never":
                        no_tool = f"no-tool run (TUA Easy/Hard) {arm_label(arm)}".rstrip()
                        baseline = (await rows_for(no_tool, BASELINE, arm))[0]
                    arm_rows.append((arm, rows, baseline))
                    runs.append(
                        {
                            "strategy": label,
                            "config": strategy.model_dump(),
                            "adapters": arm,
                            "gen_kwargs": {**gen_kwargs, "strategy": strategy.model_dump()},
                            "metrics": summarize(rows, strategy, baseline, grading),
                            "wall_s": wall_s,
                            "items": [asdict(row) for row in rows],
                        }
                    )
                comparisons += compare_arms(spec, strategy, arm_rows, grading)
    report = _report(runs, keep_rows)
    if comparisons:
        report["comparisons"] = comparisons
    return report


def arm_label(arm: Arm | None) -> str:
    return "" if not arm else "[" + ",".join(f"{r}={n}" for r, n in arm.items()) + "]"


def parse_arms(text: str | None) -> list[Arm] | None:
    """`policy=base,policy=trained` → [{"policy": "base"}, {"policy": "trained"}]: each
    comma-separated choice is one arm (`+` joins choices for several roles in one arm:
    `policy=p2+truster=t2`)."""
    if not text:
        return None
    arms: list[Arm] = []
    for entry in text.split(","):
        arm: Arm = {}
        for choice in entry.split("+"):
            role, sep, name = choice.strip().partition("=")
            if not sep or not role or not name:
                raise ValueError(f"--adapters: {choice.strip()!r} is not ROLE=NAME.")
            arm[role] = name
        arms.append(arm)
    if len(arms) < 2:
        raise ValueError(
            "--adapters needs at least two arms to compare, e.g. policy=base,policy=v2."
        )
    return arms


def compare_arms(
    spec: str,
    strategy: Strategy,
    arm_rows: list[tuple[Arm | None, list[Row], list[Row] | None]],
    grading: list[str],
) -> list[dict[str, Any]]:
    """Each later arm against the first on the same questions: the difference of every
    metric in COMPARED with its paired bootstrap 95% interval."""
    if len(arm_rows) < 2:
        return []

    def metrics_of(rows: list[Row], baseline: list[Row] | None) -> Metrics:
        by_id = {row.id: row for row in rows}

        def metric(ids: Sequence[str]) -> dict[str, float | None]:
            drawn = [by_id[i] for i in ids]
            values = summarize(drawn, strategy, baseline, grading)
            return {name: values[name] for name in COMPARED}

        return metric

    first_arm, first_rows, first_baseline = arm_rows[0]
    ids = [row.id for row in first_rows]
    return [
        {
            "strategy": spec,
            "first": first_arm,
            "second": arm,
            "n": len(ids),
            "metrics": paired_bootstrap(
                ids,
                metrics_of(first_rows, first_baseline),
                metrics_of(rows, baseline),
                samples=1000,
            ),
        }
        for arm, rows, baseline in arm_rows[1:]
    ]


async def evaluate_openai(
    items: list[Item],
    models: list[str],
    url: str,
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
    headers: dict[str, str] | None = None,
    temperature: float | None = None,
    stream: bool = False,
    extra_body: dict[str, Any] | None = None,
    keep_rows: bool = False,
) -> dict[str, Any]:
    """The same report against an OpenAI-compatible API at `url` (…/v1): one run per
    model name, graded like /solve's. A chat completion has no refine stages or tool
    decisions, so the refine and TUA metrics are null (as for `direct`)."""
    grading = sorted({item_rule(item) for item in items})
    runs: list[dict[str, Any]] = []
    async with openai_client(url, headers, concurrency) as client:
        with _progress() as progress:
            for model in models:
                options = ChatOptions(
                    model=model,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stream=stream,
                    extra_body=dict(extra_body or {}),
                    timeout_s=timeout_s,
                )
                task = progress.add_task(model, total=len(items))
                started = time.perf_counter()
                rows = await run_chat_items(
                    client,
                    items,
                    options,
                    concurrency=concurrency,
                    on_done=lambda _row, task=task: progress.advance(task),  # type: ignore[misc]
                )
                wall_s = time.perf_counter() - started
                runs.append(
                    {
                        "strategy": model,
                        "config": {"model": model, "base_url": url},
                        "gen_kwargs": {
                            "max_tokens": max_tokens,
                            "temperature": temperature,
                            "stream": stream,
                            **(extra_body or {}),
                        },
                        "metrics": summarize(rows, BASELINE, None, grading),
                        "wall_s": wall_s,
                        "items": [asdict(row) for row in rows],
                    }
                )
    return _report(runs, keep_rows)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )


def _report(runs: list[dict[str, Any]], keep_rows: bool) -> dict[str, Any]:
    first = runs[0]
    return {
        **first["metrics"],
        "strategy": first["strategy"],
        "items": first["items"],
        "runs": [{k: v for k, v in run.items() if keep_rows or k != "items"} for run in runs],
    }


def without_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The report as written to --out: each run's rows only once, at the top level."""
    return {
        **report,
        "runs": [{k: v for k, v in run.items() if k != "items"} for run in report["runs"]],
    }


def run_evaluation(
    items: list[Item],
    specs: list[str],
    url: str | None,
    start_service: Callable[[], AbstractContextManager[str]] | None = None,
    *,
    models: list[str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Against `url`, or else a service that `start_service` starts and yields the URL
    of (the CLI passes the embedded one; the harness itself only speaks HTTP). A URL
    ending in /v1 is an OpenAI-compatible API: `models` are its runs."""
    if url is not None and is_openai_url(url):
        if not models:
            raise ValueError("An OpenAI-compatible URL (…/v1) needs --model NAME.")
        return asyncio.run(evaluate_openai(items, models, url, **options))
    if models:
        raise ValueError("--model names a model of an OpenAI-compatible API: give --url …/v1.")
    options.pop("temperature", None)
    options.pop("stream", None)
    if url is not None:
        return asyncio.run(evaluate(items, specs, url, **options))
    if start_service is None:
        raise ValueError("Give the service's URL, or a way to start one.")
    with start_service() as started_url:
        return asyncio.run(evaluate(items, specs, started_url, **options))


def metrics_table(report: dict[str, Any]) -> Any:
    """A rich table of every run's headline numbers."""
    from rich.table import Table

    names = (
        "accuracy",
        "tua",
        "acc_t1",
        "acc_t2",
        "delta",
        "art_refine_rate",
        "truster_win_rate",
        "truster_readable_rate",
        "truster_position_bias",
        "tokens_per_question",
        "seconds_per_question",
    )
    table = Table(title="sciserve eval")
    table.add_column("strategy")
    for name in names:
        table.add_column(name, justify="right")
    for run in report["runs"]:
        values = [run["metrics"][name] for name in names]
        table.add_row(
            run["strategy"],
            *("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in values),
        )
    return table


def comparisons_table(report: dict[str, Any]) -> Any:
    """A rich table of each adapter arm against the first: difference and 95% interval."""
    from rich.table import Table

    table = Table(title="adapter arms: second - first (paired bootstrap 95% CI)")
    for column in ("strategy", "first", "second"):
        table.add_column(column)
    for column in ("n", *COMPARED):
        table.add_column(column, justify="right")
    for comparison in report.get("comparisons", []):
        cells = []
        for name in COMPARED:
            value = comparison["metrics"][name]
            low, high, diff = value["ci95_low"], value["ci95_high"], value["diff"]
            if diff is None:
                cells.append("-")
            elif low is None or high is None:
                cells.append(f"{diff:+.3f}")
            else:
                cells.append(f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]")
        table.add_row(
            comparison["strategy"],
            arm_label(comparison["first"]),
            arm_label(comparison["second"]),
            str(comparison["n"]),
            *cells,
        )
    return table


def default_plot_path(out: Path) -> Path:
    return out.with_suffix(".png")


def default_lm_eval_path(out: Path) -> Path:
    """`results.json` → `results-lm-eval/` beside it."""
    return out.with_name(f"{out.stem}-lm-eval")
