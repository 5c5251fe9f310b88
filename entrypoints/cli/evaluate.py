"""`sciserve eval`: evaluate strategies, adapters or an OpenAI-compatible API on a
dataset."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from contract.settings import Settings


@contextlib.contextmanager
def _embedded_service() -> Iterator[str]:
    """The embedded service on a free port, for `sciserve eval` without --url."""
    from entrypoints.embedded import EmbeddedServer, free_port

    with EmbeddedServer(Settings(port=free_port()), ready_timeout_s=900) as server:
        yield server.url


def evaluate(
    dataset: Annotated[
        str,
        typer.Argument(
            help="gsm_symbolic, an AWL .json file, or a .jsonl of problem/options/answer."
        ),
    ],
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            "-s",
            help="Repeatable, e.g. direct, adaptive, think, art, samples:5,attempts:2.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="First N items (gsm_symbolic: N generated).")
    ] = None,
    seed: Annotated[int, typer.Option(help="gsm_symbolic generator seed.")] = 1234,
    out: Annotated[str, typer.Option(help="Report JSON.")] = "results.json",
    plot: Annotated[str | None, typer.Option(help="PNG plot. Default: next to --out.")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="A running server (its /solve). A URL ending in /v1 is any OpenAI-compatible "
            "API, evaluated through /v1/chat/completions with --model. Default: start the "
            "embedded one."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Repeatable, with --url …/v1: the model name of each run (a `vllm serve` "
            "model, or sciserve's presets such as sciserve-vote5).",
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(min=0, help="With --url …/v1: sampling temperature. Default: greedy."),
    ] = None,
    stream: Annotated[
        bool, typer.Option(help="With --url …/v1: stream, and measure time to first token.")
    ] = False,
    output_path: Annotated[
        str | None,
        typer.Option(
            help="Folder for lm-evaluation-harness-style files (results_*.json and "
            "samples_*.jsonl, one folder per run). Default: next to --out."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Per engine call.")] = None,
    timeout_s: Annotated[
        float | None,
        typer.Option(
            help="Deadline per question in seconds. Default: as long as the job needs "
            "(the longest deadline the service accepts, one hour)."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="SCISERVE_API_KEY", help="Bearer key.")
    ] = None,
    adapters: Annotated[
        str | None,
        typer.Option(
            help="Compare adapters live, e.g. policy=base,policy=trained: every strategy runs "
            "once per arm on the same questions (base: the base model; a name: an adapter "
            "loaded with POST /admin/adapters), and the report gives each arm's difference "
            "from the first with a paired bootstrap 95% interval."
        ),
    ] = None,
) -> None:
    """Evaluate strategies (or an OpenAI-compatible endpoint's models) on a dataset:
    accuracy, TUA, SCoRe and ART metrics, tokens, time; also lm-eval-style files."""
    from pathlib import Path

    from rich.console import Console

    from evaluation.datasets import load_items
    from evaluation.harness import (
        comparisons_table,
        default_lm_eval_path,
        default_plot_path,
        metrics_table,
        parse_arms,
        run_evaluation,
        without_rows,
    )
    from evaluation.lm_eval_output import write_lm_eval
    from evaluation.openai_runner import is_openai_url
    from evaluation.plot import plot_runs
    from evaluation.runner import parse_strategy

    openai = url is not None and is_openai_url(url)
    specs = strategy or ["direct"]
    try:
        if openai and strategy:
            raise ValueError(
                "With an OpenAI-compatible URL (…/v1) the model name picks the strategy "
                "(e.g. --model sciserve-vote5); --strategy is for /solve."
            )
        if openai and not model:
            raise ValueError("An OpenAI-compatible URL (…/v1) needs --model NAME.")
        if model and not openai:
            raise ValueError("--model is for an OpenAI-compatible API: give --url http://…/v1.")
        if openai and adapters:
            raise ValueError("--adapters compares adapters through /solve, not a …/v1 URL.")
        arms = parse_arms(adapters)
        for spec in specs:
            parse_strategy(spec)
        items = load_items(dataset, limit=limit, seed=seed)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    openai_options: dict[str, Any] = (
        {"models": model, "temperature": temperature, "stream": stream}
        if openai
        else {"arms": arms}
    )
    report = run_evaluation(
        items,
        specs,
        url,
        start_service=_embedded_service,
        concurrency=concurrency,
        max_tokens=max_tokens,
        timeout_s=timeout_s,
        headers=headers,
        keep_rows=True,
        **openai_options,
    )
    out_path = Path(out)
    out_path.write_text(json.dumps(without_rows(report), indent=2))
    lm_eval_dir = Path(output_path) if output_path else default_lm_eval_path(out_path)
    config = {
        "model": "openai-chat-completions" if openai else "sciserve",
        "url": url,
        "dataset": dataset,
        "limit": limit,
        "seed": seed,
        "batch_size": concurrency,
        "max_tokens": max_tokens,
        "timeout_s": timeout_s,
    }
    write_lm_eval(report, items, lm_eval_dir, dataset=dataset, config=config)
    plot_path = plot_runs(
        report["runs"], Path(plot) if plot else default_plot_path(out_path), Path(dataset).name
    )
    console = Console(width=None if sys.stdout.isatty() else 200)  # a log keeps every column
    console.print(metrics_table(report))
    if report.get("comparisons"):
        console.print(comparisons_table(report))
    console.print(f"wrote {out_path}, {plot_path} and lm-eval files under {lm_eval_dir}")
