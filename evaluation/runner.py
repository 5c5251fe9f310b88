"""Run evaluation items through a live sciserve (`/solve` over HTTP) and score them.

The harness is a client: it runs against `--url`, or starts the embedded service
itself, so what it measures is what users get. For TUA it makes the no-tool run that
decides Easy/Hard on its own (DESIGN §4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from contract.answers import grading_rule, is_correct, resolve_type
from contract.presets import PRESET_BASE, STRATEGY_PRESETS
from contract.schemas import MAX_TIMEOUT_S, Strategy
from evaluation.datasets import Item
from evaluation.metrics import (
    ScoreDeltas,
    ToolTable,
    art_refine_rate,
    mean,
    truster_first_rate,
    truster_readable_rate,
    truster_win_rate,
)

REFINE_STAGES = ("selfcorrect", "art_ask", "art_refine", "art_trust")
PRESETS: dict[str, dict[str, Any]] = {
    name: fields for name, (fields, _) in STRATEGY_PRESETS.items()
}


def parse_strategy(spec: str) -> Strategy:
    """Presets (contract/presets.py: `direct`, `adaptive`, `think`, `art`, `plan`,
    `vote5`, …) and `field:value` pairs, comma-separated,
    e.g. `samples:5,attempts:2` or `adaptive,art`. The harness starts from direct
    answering (tools: never), so a spec names what it adds."""
    fields: dict[str, Any] = dict(PRESET_BASE)
    forms = (
        f"use {', '.join(PRESETS)} or field:value pairs joined by commas "
        f"(fields: {', '.join(Strategy.model_fields)}), e.g. samples:5,attempts:2"
    )
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part in PRESETS:
            fields.update(PRESETS[part])
        elif ":" in part:
            key, value = part.split(":", 1)
            fields[key.strip()] = value.strip()
        else:
            raise ValueError(f"Unknown strategy part {part!r} in {spec!r}: {forms}.")
    try:
        return Strategy.model_validate(fields, strict=False)  # "samples:5" carries text
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'strategy'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"Invalid strategy {spec!r} ({problems}): {forms}.") from None


@dataclass
class Row:
    """One question's outcome under one strategy."""

    id: str
    reference: str
    answer: str | None = None
    correct: bool = False
    initial_answer: str | None = None
    initial_correct: bool = False
    used_tools: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    generated_tokens: int = 0
    first_attempt_tokens: int = 0  # generated before any refine stage (the Acc@t1 cost)
    engine_calls: int = 0
    seconds: float = 0.0
    refine_decisions: list[str] = field(default_factory=list)
    truster_choices: list[str] = field(default_factory=list)
    truster_initial_correct: list[bool] = field(default_factory=list)
    truster_refined_correct: list[bool] = field(default_factory=list)
    truster_positions: list[int | None] = field(default_factory=list)  # 1-based, as shown
    error: str | None = None
    response: str | None = None  # the answer's text as the service returned it
    prompt: str | None = None  # what was sent as the user's message
    ttft_s: float | None = None  # streamed runs: seconds to the first content token


def item_rule(item: Item) -> str:
    """The grading rule of one item, in words (the report names it)."""
    return grading_rule(resolve_type(item.answer_type, item.options, item.reference), item.rel_tol)


def score(item: Item, body: dict[str, Any], seconds: float) -> Row:
    """A row from a `/solve` response (trace included). Correctness is graded here,
    with the dataset's rule (`Item.rel_tol`), not the service's default tolerance."""
    answer_type = resolve_type(item.answer_type, item.options, item.reference)

    def correct(answer: str | None) -> bool:
        return is_correct(answer, item.reference, answer_type, item.options, item.rel_tol)

    usage = body.get("usage", {})
    row = Row(
        id=item.id,
        reference=item.reference,
        answer=body.get("answer"),
        correct=correct(body.get("answer")),
        initial_answer=body.get("initial_answer"),
        initial_correct=correct(body.get("initial_answer")),
        used_tools=list(body.get("used_tools", [])),
        prompt_tokens=usage.get("prompt_tokens", 0),
        generated_tokens=usage.get("completion_tokens", 0) + usage.get("thought_tokens", 0),
        engine_calls=usage.get("engine_calls", 0),
        seconds=seconds,
        response=body.get("answer_text"),
        prompt=item.problem,
    )
    refined = False
    for event in body.get("trace") or []:
        detail = event.get("detail", {})
        refined = refined or event["stage"] in REFINE_STAGES
        if not refined:
            row.first_attempt_tokens += event["completion_tokens"] + event["thought_tokens"]
        if event["stage"] == "art_ask":
            row.refine_decisions += detail.get("decisions", [])
        elif event["stage"] == "art_trust":
            row.truster_choices += detail.get("choices", [])
            row.truster_positions += detail.get("positions", [])
            if "answers_initial" in detail:  # regraded with the dataset's rule
                row.truster_initial_correct += [correct(a) for a in detail["answers_initial"]]
                row.truster_refined_correct += [correct(a) for a in detail["answers_refined"]]
            else:
                row.truster_initial_correct += [bool(x) for x in detail.get("correct_initial", [])]
                row.truster_refined_correct += [bool(x) for x in detail.get("correct_refined", [])]
    return row


def _with_domain(strategy: Strategy, item: Item) -> dict[str, Any]:
    """The strategy as sent: an AWL set's domain fills an unset `domain`, so the "awl"
    prompt style shows the domain's tools without classifying."""
    fields = strategy.model_dump()
    if item.domain is not None and fields.get("domain") is None:
        fields["domain"] = item.domain
    return fields


async def run_items(
    client: httpx.AsyncClient,
    items: list[Item],
    strategy: Strategy,
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
    adapters: dict[str, str] | None = None,
    on_done: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Every item through `/solve`, `concurrency` at a time (the engine batches them),
    with `adapters` choosing which loaded adapter plays a role ("base": none).
    A failed request is a wrong answer with its error, never a crashed run."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Item) -> Row:
        body: dict[str, Any] = {
            "problem": item.problem,
            "options": item.options,
            "answer_type": item.answer_type,
            "reference": item.reference,
            "strategy": _with_domain(strategy, item),
            "return_trace": True,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if adapters:
            body["adapters"] = adapters
        # Without --timeout-s a question gets the longest deadline the contract allows,
        # so a slow CPU never turns an evaluation into a row of 504s.
        body["timeout_s"] = timeout_s if timeout_s is not None else MAX_TIMEOUT_S
        async with gate:
            started = time.perf_counter()
            try:
                response = await client.post("/solve", json=body)
                seconds = time.perf_counter() - started
                row = (
                    score(item, response.json(), seconds)
                    if response.status_code == 200
                    else Row(
                        item.id,
                        item.reference,
                        seconds=seconds,
                        error=f"HTTP {response.status_code}: {response.text[:300]}",
                    )
                )
            except httpx.HTTPError as exc:
                row = Row(item.id, item.reference, error=f"{type(exc).__name__}: {exc}")
        if on_done is not None:
            on_done(row)
        return row

    return list(await asyncio.gather(*(one(item) for item in items)))


def summarize(
    rows: list[Row],
    strategy: Strategy,
    baseline: list[Row] | None = None,
    grading: list[str] | None = None,
) -> dict[str, Any]:
    """The metrics under DESIGN §2's plain names; a metric the strategy cannot have
    (TUA without tools, SCoRe deltas without refining, ART rates without ART) is null.
    `grading` names the correctness rules the items were graded by."""
    refines = strategy.attempts > 1 or strategy.art
    deltas = (
        ScoreDeltas.of([r.initial_correct for r in rows], [r.correct for r in rows])
        if refines and rows
        else None
    )
    table = None
    if baseline is not None:
        by_id = {row.id: row.correct for row in baseline}
        table = ToolTable.count([by_id[r.id] for r in rows], [bool(r.used_tools) for r in rows])
    decisions = [d for r in rows for d in r.refine_decisions]
    positions = [p for r in rows for p in r.truster_positions]
    first_rate = truster_first_rate(positions)
    return {
        "n": len(rows),
        "grading": grading,
        "accuracy": mean([1.0 if r.correct else 0.0 for r in rows]),
        "tua": table.tua if table else None,
        "tua_table": asdict(table) if table else None,
        "acc_t1": deltas.acc_t1 if deltas else None,
        "acc_t2": deltas.acc_t2 if deltas else None,
        "delta": deltas.delta if deltas else None,
        "delta_i2c": deltas.delta_i2c if deltas else None,
        "delta_c2i": deltas.delta_c2i if deltas else None,
        "art_refine_rate": art_refine_rate(decisions) if strategy.art else None,
        "truster_win_rate": truster_win_rate(
            [c for r in rows for c in r.truster_choices],
            [c for r in rows for c in r.truster_initial_correct],
            [c for r in rows for c in r.truster_refined_correct],
        )
        if strategy.art
        else None,
        # Share of readable Truster verdicts that picked the solution shown first; the
        # bias is its distance from 0.5 (orders are random, so 0 is unbiased).
        "truster_readable_rate": truster_readable_rate(positions) if strategy.art else None,
        "truster_first_rate": first_rate if strategy.art else None,
        "truster_position_bias": first_rate - 0.5
        if strategy.art and first_rate is not None
        else None,
        "tokens_per_question": mean([float(r.generated_tokens) for r in rows]),
        "tokens_per_question_t1": mean([float(r.first_attempt_tokens) for r in rows])
        if refines
        else None,
        "prompt_tokens_per_question": mean([float(r.prompt_tokens) for r in rows]),
        "engine_calls_per_question": mean([float(r.engine_calls) for r in rows]),
        "seconds_per_question": mean([r.seconds for r in rows]),
        # Streamed runs only (OpenAI-compatible endpoints with --stream): null otherwise.
        "ttft_seconds_per_question": mean([r.ttft_s for r in rows if r.ttft_s is not None]),
        "tool_use_rate": mean([1.0 if r.used_tools else 0.0 for r in rows]),
        "errors": sum(r.error is not None for r in rows),
    }
