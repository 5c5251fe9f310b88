"""`sciserve calibrate`: fit `strategy: auto`'s confidence threshold on a development set
(entrypoints/calibrate.py says how)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console


@contextlib.contextmanager
def _service(url: str | None) -> Iterator[str]:
    """The given server, or the embedded default started with a policy that never trusts
    the greedy answer, so every question records its full vote."""
    if url is not None:
        yield url
        return
    from contract.settings import Settings
    from entrypoints.calibrate import NEVER_TRUST
    from entrypoints.embedded import EmbeddedServer, free_port

    with tempfile.TemporaryDirectory(prefix="sciserve-calibrate-") as folder:
        policy = Path(folder) / "never-trust.json"
        policy.write_text(json.dumps(NEVER_TRUST))
        settings = Settings(port=free_port(), auto_policy=policy)
        with EmbeddedServer(settings, ready_timeout_s=900) as server:
            yield server.url


def calibrate(
    dataset: Annotated[
        str, typer.Option(help="gsm_symbolic, an AWL .json file, or a .jsonl development set.")
    ] = "gsm_symbolic",
    limit: Annotated[int, typer.Option(help="Questions to fit on.")] = 50,
    seed: Annotated[int, typer.Option(help="gsm_symbolic generator seed (not the test's).")] = 99,
    samples: Annotated[int, typer.Option(help="The escalation's samples (auto's cap).")] = 5,
    max_tokens: Annotated[int, typer.Option(help="Each generation's max_tokens.")] = 512,
    strategy: Annotated[
        str, typer.Option(help="What auto runs per sample, e.g. direct, adaptive, attempts:2.")
    ] = "direct",
    tolerance: Annotated[
        float, typer.Option(help="Accuracy auto may give up against always voting.")
    ] = 0.01,
    out: Annotated[Path, typer.Option(help="The policy JSON (SCISERVE_AUTO_POLICY).")] = Path(
        "auto.json"
    ),
    url: Annotated[
        str | None,
        typer.Option(help="A running server whose auto policy never trusts (see the README)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Questions in flight at once (each keeps its seeds).")
    ] = 1,
) -> None:
    """Record the greedy confidence and the full vote per question, then choose the
    cheapest threshold within `tolerance` of always voting; writes the policy, its
    recording and a plot (accuracy against tokens)."""
    from entrypoints.calibrate import collect, fit, plot, write_policy
    from evaluation.datasets import load_items
    from evaluation.runner import parse_strategy

    console = Console(stderr=True)
    items = load_items(dataset, limit=limit, seed=seed)
    fields: dict[str, Any] = parse_strategy(strategy).model_dump(exclude_defaults=True)
    recording = out.with_suffix(".rows.json")
    done: list[str] = []
    with (
        _service(url) as base,
        httpx.Client(base_url=base, timeout=3600) as client,
        console.status("recording") as status,
    ):

        def progress(row: dict[str, Any]) -> None:
            done.append(row["id"])
            status.update(f"recorded {len(done)}/{len(items)}: {row['id']}")

        rows = collect(
            client, items, samples, max_tokens, fields, progress, concurrency=concurrency
        )
    recording.write_text(json.dumps(rows, indent=1))
    policy = fit(rows, samples, tolerance)
    fitted = policy["fitted"]
    points = {
        "greedy": (fitted["greedy_tokens_per_question"], fitted["greedy_accuracy"]),
        f"vote {samples} (settled)": (
            fitted["always_vote_tokens_per_question"],
            fitted["always_vote_accuracy"],
        ),
        "auto": (fitted["tokens_per_question"], fitted["accuracy"]),
    }
    picture = plot(points, policy["curves"][policy["measure"]], out.with_suffix(".png"))
    source = {"dataset": dataset, "limit": limit, "seed": seed, "strategy": strategy}
    write_policy(policy, out, source)
    console.print(
        f"{policy['measure']} >= {policy['threshold']:.4f}: accuracy {fitted['accuracy']:.3f} "
        f"at {fitted['tokens_per_question']:.0f} tokens/question (always voting: "
        f"{fitted['always_vote_accuracy']:.3f} at "
        f"{fitted['always_vote_tokens_per_question']:.0f}); wrote {out}, {recording}, {picture}"
    )
