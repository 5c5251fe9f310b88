"""`sciserve eval`: run strategies over a dataset, print and write the metrics, plot.

Each strategy runs over every item; a strategy that may use tools also gets the
no-tool run that splits questions into Easy and Hard for TUA (reused when `direct` is
among the strategies, made once otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contract.schemas import Strategy
from evaluation.datasets import Item
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
) -> dict[str, Any]:
    """The report: the first strategy's metrics at the top level (DESIGN §2), its
    rows under `items`, and every strategy under `runs`."""
    strategies = [(spec, parse_strategy(spec)) for spec in specs]
    grading = sorted({item_rule(item) for item in items})
    runs: list[dict[str, Any]] = []
    cache: dict[str, list[Row]] = {}
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    timeout = httpx.Timeout(None, connect=10.0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as client:
        with Progress(*columns) as progress:

            async def rows_for(label: str, strategy: Strategy) -> list[Row]:
                key = strategy.model_dump_json()
                if key not in cache:
                    task = progress.add_task(label, total=len(items))
                    cache[key] = await run_items(
                        client,
                        items,
                        strategy,
                        concurrency=concurrency,
                        max_tokens=max_tokens,
                        timeout_s=timeout_s,
                        on_done=lambda _row: progress.advance(task),
                    )
                return cache[key]

            for spec, strategy in strategies:
                rows = await rows_for(spec, strategy)
                baseline = None
                if strategy.tools != "never":
                    baseline = await rows_for("no-tool run (TUA Easy/Hard)", BASELINE)
                runs.append(
                    {
                        "strategy": spec,
                        "config": strategy.model_dump(),
                        "metrics": summarize(rows, strategy, baseline, grading),
                        "items": [asdict(row) for row in rows],
                    }
                )
    first = runs[0]
    return {
        **first["metrics"],
        "strategy": first["strategy"],
        "items": first["items"],
        "runs": [{k: v for k, v in run.items() if k != "items"} for run in runs],
    }


def run_evaluation(
    items: list[Item],
    specs: list[str],
    url: str | None,
    start_service: Callable[[], AbstractContextManager[str]] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Against `url`, or else a service that `start_service` starts and yields the URL
    of (the CLI passes the embedded one; the harness itself only speaks HTTP)."""
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
