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
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contract.schemas import Strategy
from evaluation.datasets import Item
from evaluation.openai_runner import ChatOptions, is_openai_url, openai_client, run_chat_items
from evaluation.runner import Row, item_rule, parse_strategy, run_items, summarize

BASELINE = Strategy(tools="never")


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
) -> dict[str, Any]:
    """The report: the first strategy's metrics at the top level (DESIGN §2), its
    rows under `items`, and every strategy under `runs` (with its rows too when
    `keep_rows`, for the lm-eval files)."""
    strategies = [(spec, parse_strategy(spec)) for spec in specs]
    grading = sorted({item_rule(item) for item in items})
    runs: list[dict[str, Any]] = []
    cache: dict[str, tuple[list[Row], float]] = {}
    gen_kwargs = {"max_tokens": max_tokens, "timeout_s": timeout_s}
    timeout = httpx.Timeout(None, connect=10.0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as client:
        with _progress() as progress:

            async def rows_for(label: str, strategy: Strategy) -> tuple[list[Row], float]:
                key = strategy.model_dump_json()
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
                        on_done=lambda _row: progress.advance(task),
                    )
                    cache[key] = (rows, time.perf_counter() - started)
                return cache[key]

            for spec, strategy in strategies:
                rows, wall_s = await rows_for(spec, strategy)
                baseline = None
                if strategy.tools != "never":
                    baseline = (await rows_for("no-tool run (TUA Easy/Hard)", BASELINE))[0]
                runs.append(
                    {
                        "strategy": spec,
                        "config": strategy.model_dump(),
                        "gen_kwargs": {**gen_kwargs, "strategy": strategy.model_dump()},
                        "metrics": summarize(rows, strategy, baseline, grading),
                        "wall_s": wall_s,
                        "items": [asdict(row) for row in rows],
                    }
                )
    return _report(runs, keep_rows)


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


def default_plot_path(out: Path) -> Path:
    return out.with_suffix(".png")


def default_lm_eval_path(out: Path) -> Path:
    """`results.json` → `results-lm-eval/` beside it."""
    return out.with_name(f"{out.stem}-lm-eval")
