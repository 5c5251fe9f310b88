"""A vote whose samples run on their own, so it can stop once it is decided.

`samples: K` runs K samples, each its own pipeline (generate, then every refine stage)
on its own context (`SolveContext.fork`): sample 0 greedy, sample i drawn with seed
base + i, as vLLM seeds the children of an n>1 request, all on the same prompt so the
prefix cache shares it. Each is one n=1 engine request at a time whose id the race
holds: vLLM splits an n>1 request into children the caller cannot abort one by one.

At most `window` samples are in flight; each that finishes starts the next. As each
finishes, the stop rule (`strategy.stop`, early_stop.py) reads the finished answers;
once it says stop, the unfinished samples are aborted in the engine
(`AbortableEngine.abort`: vLLM ends each with the tokens so far, which stay billed),
and those not yet started never start. An engine that cannot abort has its samples'
tasks cancelled instead (their partial tokens are then not counted).

Afterwards the samples' trace events merge stage by stage into the job's trace, so a
raced vote shows the same stages as before (generate, refine, select), and their engine
calls reach the job's sink under the merged stage's index.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contract.answers import equivalent
from contract.schemas import TraceEvent, Usage
from workers.engines.base import AbortableEngine
from workers.job_sink import EngineCall, JobSink, TraceSpan
from workers.metrics import AUTO_DECISIONS, VOTE_SAMPLES, VOTE_TOKENS_SAVED
from workers.strategies.confidence import confidences
from workers.strategies.context import (
    BudgetSpent,
    Candidate,
    SampleAborted,
    SampleScope,
    SolveContext,
    Stage,
    run_stages,
)
from workers.strategies.early_stop import default_window, should_stop


@dataclass
class SampleOutcome:
    """One sample of the race: its candidate after its last stage (None: stopped),
    its answer after generate (the response's `initial_answer`), its context."""

    index: int
    ctx: SolveContext
    candidate: Candidate | None = None
    initial: str | None = None
    started: bool = False
    finished_order: int | None = None


@dataclass
class RaceReport:
    """How the vote ended, for the trace: the rule, the window, the samples used (in
    finish order), stopped while running and never started, and the estimated tokens
    the stop saved."""

    rule: Any
    window: int
    samples: int
    finish_order: list[int] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)
    not_started: list[int] = field(default_factory=list)
    stopped_early: bool = False
    tokens_saved_estimate: int = 0
    stopped_with: list[str] = field(default_factory=list)  # the engine's finish reasons
    auto: dict[str, Any] | None = None  # strategy.auto: the greedy answer's confidence

    def detail(self) -> dict[str, Any]:
        rule = self.rule if isinstance(self.rule, str) else self.rule.model_dump()
        return {
            "rule": rule,
            "window": self.window,
            "samples": self.samples,
            "used": len(self.finish_order),
            "finish_order": self.finish_order,
            "aborted": self.aborted,
            "not_started": self.not_started,
            "stopped_early": self.stopped_early,
            "tokens_saved_estimate": self.tokens_saved_estimate,
            "stopped_with": self.stopped_with,
            **({"auto": self.auto} if self.auto is not None else {}),
        }


def base_seed(ctx: SolveContext) -> int:
    """The request's `seed`, else one derived from the job id (a retried job draws the
    same samples)."""
    if ctx.request.seed is not None:
        return ctx.request.seed
    digest = hashlib.sha256(ctx.seed.encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1024)


def window_of(ctx: SolveContext) -> int:
    """Samples in flight at once: the request's `window`; else all K for `none` (one
    batch, as before), the smallest majority otherwise (it alone can settle a vote)."""
    strategy = ctx.request.strategy
    if strategy.window is not None:
        return min(strategy.window, strategy.vote_size)
    if strategy.stop == "none":
        return strategy.vote_size
    return default_window(strategy.vote_size)


async def race(
    ctx: SolveContext, stages: Sequence[Stage]
) -> tuple[list[Candidate], list[str | None], RaceReport]:
    """Run the vote's K samples through `stages` until the stop rule ends it. Returns
    the finished samples' candidates and initial answers in sample order (the greedy
    one first when it finished) and the report; `ctx` gets their usage, trace events
    and engine calls."""
    strategy = ctx.request.strategy
    samples, window = strategy.vote_size, window_of(ctx)
    seed = base_seed(ctx)
    outcomes = [
        SampleOutcome(i, ctx.fork(SampleScope(i, seed), SampleSink())) for i in range(samples)
    ]
    report = RaceReport(strategy.stop, window, samples)
    vote = ctx.span.vote(samples)  # the samples' spans hang under it
    if strategy.auto:  # the greedy sample alone first, read with its log probabilities
        greedy_scope = outcomes[0].ctx.scope
        assert greedy_scope is not None
        greedy_scope.logprobs = True
        window = 1
    running: dict[asyncio.Task[None], SampleOutcome] = {}

    def start_next() -> None:
        for outcome in outcomes:
            if not outcome.started and len(running) < window:
                outcome.started = True
                running[asyncio.create_task(_run_sample(outcome, stages, vote))] = outcome

    def same(first: str, second: str) -> bool:
        return equivalent(first, second, ctx.answer_type)

    start_next()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.pop(task)
                task.result()  # a sample's own failure (not a stop) fails the job
            for outcome in (o for o in outcomes if o.candidate is not None):
                if outcome.finished_order is None:
                    outcome.finished_order = len(report.finish_order)
                    report.finish_order.append(outcome.index)
            finished = [o for o in outcomes if o.candidate is not None]
            answers = [o.candidate.answer for o in finished if o.candidate is not None]
            greedy_done = bool(finished) and finished[0].index == 0
            unfinished = samples - len(finished)
            if strategy.auto and report.auto is None and not running:
                report.auto = _auto_decision(ctx, outcomes[0])
                if not report.auto["escalated"]:
                    report.stopped_early = True
                    break
                window = window_of(ctx)  # not sure enough: the vote, as `stop` runs it
                report.window = window
            if unfinished and should_stop(
                strategy.stop,
                answers,
                unfinished,
                greedy_answered=greedy_done and answers[0] is not None,
                ties_to_greedy=not strategy.art,
                same=same,
            ):
                report.stopped_early = True
                await _stop(ctx, running)
                running.clear()
                break
            start_next()
    except BaseException as exc:
        vote.end(error=exc)
        raise
    finally:
        if running:  # the job itself failed or was cancelled: leave nothing running
            await _stop(ctx, running)
    await _merge(ctx, outcomes)
    report.aborted = [o.index for o in outcomes if o.started and o.candidate is None]
    report.not_started = [o.index for o in outcomes if not o.started]
    report.stopped_with = [
        reason for o in outcomes if o.ctx.scope is not None for reason in o.ctx.scope.stopped_with
    ]
    report.tokens_saved_estimate = _tokens_saved(outcomes)
    vote.end_vote(report.detail())
    VOTE_SAMPLES.labels(kind="used").inc(len(report.finish_order))
    VOTE_SAMPLES.labels(kind="saved").inc(samples - len(report.finish_order))
    VOTE_TOKENS_SAVED.inc(report.tokens_saved_estimate)
    finished = [o for o in outcomes if o.candidate is not None]
    return (
        [o.candidate for o in finished if o.candidate is not None],
        [o.initial for o in finished],
        report,
    )


def _auto_decision(ctx: SolveContext, greedy: SampleOutcome) -> dict[str, Any]:
    """strategy.auto after the greedy sample: return it alone when its output's
    confidence passes the policy's threshold and it has an answer; else escalate."""
    policy = ctx.auto_policy
    scope = greedy.ctx.scope
    assert scope is not None
    measured = confidences(scope.last_logprobs or [])
    value = measured[policy.measure]
    sure = policy.passes(value)
    answered = greedy.candidate is not None and greedy.candidate.answer is not None
    escalated = not (sure and answered)
    AUTO_DECISIONS.labels(decision="escalate" if escalated else "greedy").inc()
    return {
        "measure": policy.measure,
        "threshold": policy.threshold,
        "confidence": value,
        "confidences": measured,  # every measure, to calibrate
        "escalated": escalated,
    }


async def _run_sample(outcome: SampleOutcome, stages: Sequence[Stage], vote: TraceSpan) -> None:
    """One sample through every stage; a stop ends it quietly, unfinished, and so does
    a job budget spent before its first answer (after that, its last answer stands).
    Its stages' spans hang under a span of its own, beneath the vote's."""
    span = outcome.ctx.span = vote.sample(outcome.index)
    try:
        run = await run_stages(outcome.ctx, stages, [])
    except (SampleAborted, BudgetSpent):
        span.end_sample(finished=False)
        return
    except BaseException as exc:
        if outcome.ctx.scope is not None and outcome.ctx.scope.aborted:
            span.end_sample(finished=False)  # its task was cancelled by the vote's stop
        else:
            span.end(error=exc)
        raise
    span.end_sample(finished=True)
    [outcome.candidate] = run.candidates
    outcome.initial = run.initial[0] if run.initial else outcome.candidate.answer


async def _stop(ctx: SolveContext, running: dict[asyncio.Task[None], SampleOutcome]) -> None:
    """Stop every running sample: abort its engine requests where the engine can (they
    return their tokens so far, counted in the sample's usage), cancel the tasks that
    are not in an engine call (a tool call) or whose engine cannot abort."""
    in_flight: list[str] = []
    for outcome in running.values():
        assert outcome.ctx.scope is not None
        outcome.ctx.scope.aborted = True
        in_flight.extend(outcome.ctx.scope.in_flight)
    abortable = isinstance(ctx.engine, AbortableEngine)
    if abortable and in_flight:
        await ctx.engine.abort(in_flight)  # type: ignore[attr-defined]
    for task, outcome in running.items():
        assert outcome.ctx.scope is not None
        if not abortable or not outcome.ctx.scope.in_flight:
            task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


async def _merge(ctx: SolveContext, outcomes: Sequence[SampleOutcome]) -> None:
    """The samples' usage, trace events (stage by stage) and engine calls into the job's
    context, and each merged event to the job's sink as a finished stage. A stage's
    merged event sums its samples' tokens and calls and takes the longest duration
    (they ran side by side); its detail joins theirs (`merge_details`)."""
    base = len(ctx.trace)
    for outcome in outcomes:
        ctx.usage.add(outcome.ctx.usage)
    depth = max((len(o.ctx.trace) for o in outcomes), default=0)
    for position in range(depth):
        events = [o.ctx.trace[position] for o in outcomes if len(o.ctx.trace) > position]
        ctx.trace.append(merge_events(events))
    for outcome in outcomes:
        sink = outcome.ctx.sink
        if isinstance(sink, SampleSink):
            for call in sink.calls:
                moved = EngineCall(base + call.stage, call.request, call.completion)
                ctx.sink.on_engine_call(moved)
    for event in ctx.trace[base:]:
        await ctx.sink.on_stage(event)


def merge_events(events: Sequence[TraceEvent]) -> TraceEvent:
    """One stage's events of several samples as one event."""
    first = events[0]
    return TraceEvent(
        stage=first.stage,
        role=first.role,
        prompt_tokens=sum(e.prompt_tokens for e in events),
        completion_tokens=sum(e.completion_tokens for e in events),
        thought_tokens=sum(e.thought_tokens for e in events),
        tool_tokens=sum(e.tool_tokens for e in events),
        engine_calls=sum(e.engine_calls for e in events),
        duration_s=max(e.duration_s for e in events),
        detail=merge_details([e.detail for e in events]),
    )


def merge_details(details: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample details as one: lists join in sample order, counts add up, a value
    all samples share stays one value, and differing values become a list."""
    merged: dict[str, Any] = {}
    keys = list(dict.fromkeys(key for detail in details for key in detail))
    for key in keys:
        values = [detail[key] for detail in details if key in detail]
        if all(isinstance(v, list) for v in values):
            merged[key] = [item for v in values for item in v]
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            merged[key] = sum(values)
        elif all(v == values[0] for v in values):
            merged[key] = values[0]
        else:
            merged[key] = values
    return merged


def _tokens_saved(outcomes: Sequence[SampleOutcome]) -> int:
    """An estimate: a sample not run would have generated what the finished ones did on
    average; a stopped one that much less what it had generated."""
    finished = [o.ctx.usage for o in outcomes if o.candidate is not None]
    if not finished:
        return 0
    mean = sum(_generated(u) for u in finished) / len(finished)
    saved = 0.0
    for outcome in outcomes:
        if outcome.candidate is None:
            saved += max(0.0, mean - _generated(outcome.ctx.usage))
    return round(saved)


def _generated(usage: Usage) -> int:
    return usage.completion_tokens + usage.thought_tokens


class SampleSink(JobSink):
    """A sample's sink: keeps its engine calls for the job's sink (re-emitted under the
    merged stage index); its stage events reach the job as the merged events."""

    def __init__(self) -> None:
        self.calls: list[EngineCall] = []

    def on_engine_call(self, call: EngineCall) -> None:
        self.calls.append(call)
