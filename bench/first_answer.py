"""The first answers of the embedded default (the demo model on the CPU), as the README's
quick start asks them: the clips question, then "What is 15% of 80?", each through
`POST /solve` with the default strategy (`tools: auto`, the sciserve prompt layout).

Per question: the first engine call's prompt tokens (from the job's trace record), the
wall time of the answer, the answer and whether it is right. Each variant starts its
own server, so the clips question is that server's first answer:
- `capped`: the tools the sciserve layout shows now (workers/strategies/tool_choice.py
  `PROMPT_TOOL_CAP`: the python tool and at most a few relevant others);
- `uncapped`: the behaviour before the cap (every tool that fits the context, BM25
  ranked), by running the same server with the cap switched off.

Goal: the clips question's first answer in at most 30 s on 2 CPU cores (54 s uncapped;
26 s on the release before tools filled the prompt). CPU timings are noisy.
    python -m bench.first_answer [--model demo|tiny|PATH] [--variants capped,uncapped]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.common import bench_settings, write_result
from workers import traces
from workers.strategies import generate
from workers.strategies.tool_choice import PROMPT_TOOL_CAP

QUESTIONS = [  # the README's quick start, in its order
    (
        "clips",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
        "clips in May. How many clips did Natalia sell altogether in April and May?",
        "72",
    ),
    ("percent", "What is 15% of 80?", "12"),
]
VARIANTS = {"capped": PROMPT_TOOL_CAP, "uncapped": None}
GOAL_S = 30.0


def _first_prompt_tokens(records: Path) -> dict[str, int]:
    """Job id → prompt tokens of its generate stage's first engine call."""
    found = {}
    for path in records.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            stage = next(s for s in record["stages"] if s["stage"] == "generate")
            found[record["id"]] = stage["calls"][0]["prompt_tokens"]
    return found


def run_variant(model: str, variant: str, progress: Progress) -> dict[str, Any]:
    """One fresh server with the variant's tool cap; the questions in order."""
    from entrypoints.embedded import EmbeddedServer

    task = progress.add_task(f"{variant}: starting the engine", total=len(QUESTIONS) + 1)
    answers: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sciserve-first-") as folder:
        records = Path(folder)
        # The worker runs in this process: its adaptive stage reads the cap per job,
        # and the trace sink records each engine call's prompt tokens.
        traces.configure(traces.TraceSink(records))
        try:
            with mock.patch.object(generate, "PROMPT_TOOL_CAP", VARIANTS[variant]):
                started = time.perf_counter()
                with EmbeddedServer(bench_settings(model), ready_timeout_s=900) as server:
                    ready_s = time.perf_counter() - started
                    progress.advance(task)
                    with server.client() as client:
                        for name, problem, reference in QUESTIONS:
                            progress.update(task, description=f"{variant}: {name}")
                            started = time.perf_counter()
                            response = client.post(
                                "/solve",
                                json={"problem": problem, "reference": reference},
                            )
                            wall = time.perf_counter() - started
                            response.raise_for_status()
                            body = response.json()
                            answers[name] = {
                                "id": body["id"],
                                "wall_s": wall,
                                "answer": body["answer"],
                                "correct": body["correct"],
                                "used_tools": body["used_tools"],
                                "engine_calls": body["usage"]["engine_calls"],
                                "completion_tokens": body["usage"]["completion_tokens"],
                            }
                            progress.advance(task)
        finally:
            traces.configure(None)
        tokens = _first_prompt_tokens(records)
    for numbers in answers.values():
        numbers["prompt_tokens"] = tokens.get(numbers.pop("id"))
    return {"engine_ready_s": ready_s, "questions": answers}


def side_by_side(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per question, uncapped ÷ capped prompt tokens and wall time."""
    ratios: dict[str, dict[str, float]] = {}
    if not {"capped", "uncapped"} <= set(results):
        return ratios
    for name, _, _ in QUESTIONS:
        capped = results["capped"]["questions"][name]
        uncapped = results["uncapped"]["questions"][name]
        ratios[name] = {
            "prompt_tokens": (uncapped["prompt_tokens"] or 0) / (capped["prompt_tokens"] or 1),
            "wall": uncapped["wall_s"] / capped["wall_s"],
        }
    return ratios


def print_table(results: dict[str, dict[str, Any]], ratios: dict[str, dict[str, float]]) -> None:
    """Prompt tokens and seconds per variant side by side, then their ratios."""
    table = Table(title="First answers of the embedded default (CPU timings are noisy)")
    table.add_column("question")
    for variant in results:
        table.add_column(f"{variant} tokens", justify="right")
    if ratios:
        table.add_column("tokens ratio", justify="right")
    for variant in results:
        table.add_column(f"{variant} s", justify="right")
    if ratios:
        table.add_column("time ratio", justify="right")
    table.add_column("answers")
    for index, (name, _, _) in enumerate(QUESTIONS):
        numbers = [result["questions"][name] for result in results.values()]
        row = [f"{name} (first)" if index == 0 else name]
        row += [str(n["prompt_tokens"]) for n in numbers]
        row += [f"{ratios[name]['prompt_tokens']:.2f}x"] if ratios else []
        row += [f"{n['wall_s']:.1f}" for n in numbers]
        row += [f"{ratios[name]['wall']:.2f}x"] if ratios else []
        row.append(
            " / ".join(f"{n['answer']}{'' if n['correct'] else ' (wrong)'}" for n in numbers)
        )
        table.add_row(*row)
    Console(width=140).print(table)


def main(
    model: str = typer.Option("demo", help="demo (prepared), tiny, or a model folder."),
    variants: str = typer.Option("capped,uncapped", help="Comma-separated: capped, uncapped."),
) -> None:
    chosen = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        raise typer.BadParameter(f"unknown variants {sorted(unknown)}; known: {list(VARIANTS)}")
    results: dict[str, dict[str, Any]] = {}
    with Progress() as progress:
        for variant in chosen:
            results[variant] = run_variant(model, variant, progress)
    ratios = side_by_side(results)
    print_table(results, ratios)
    payload: dict[str, Any] = {"model": model, "variants": results, "uncapped_over_capped": ratios}
    if "capped" in results:
        first = results["capped"]["questions"][QUESTIONS[0][0]]["wall_s"]
        payload["goal"] = f"clips first answer <= {GOAL_S:g} s with the cap"
        payload["goal_met"] = first <= GOAL_S
    write_result("first_answer", payload)


if __name__ == "__main__":
    typer.run(main)
