"""A job's OpenTelemetry trace (DESIGN §9), built on the job's explicit sink.

The worker loop runs a claimed job through `solve`, which, when the worker's telemetry
is on (contract/telemetry.py), opens the job's spans under the trace context the job
carried across the queue (the gateway's request span):

    POST /solve                       gateway, SERVER (contract/telemetry.TraceRequests)
    ├── queue wait                    from submission to claim
    └── job                           CHAIN: strategy, outcome, usage
        ├── vote                      CHAIN: samples > 1; how the vote ended
        │   └── sample                CHAIN: one per sample that started
        │       └── <stage>           CHAIN: generate, selfcorrect, art_*, …
        ├── <stage>                   (select; every stage of a single sample)
        │   ├── chat <model>          LLM: one per engine request
        │   │   └── llm_request       vLLM's own span (trace_headers)
        │   └── execute_tool <tool>   TOOL: one per tool call
        │       └── POST /invoke      the tool server's SERVER span (traceparent)

The sink carries the job's span (`JobSink.span`); the context opens children of it
(`SolveContext.span`), so nothing here is ambient: no current-span context variable is
read or set. Attributes follow the GenAI semantic conventions (v1.41.0, pinned in
contract/telemetry.py) plus `sciserve.*` and OpenInference's span kind and token counts,
which Phoenix reads. Prompts and outputs are recorded only when the telemetry's
`content` is on (SCISERVE_TRACE_CONTENT), and the outputs of a job with hidden thoughts
only when the job may reveal them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer

from contract.errors import SciserveError
from contract.schemas import SolveRequest, SolveResult, TraceEvent
from contract.telemetry import CHAIN, LLM, SPAN_KIND, TOOL, carrier, end_span, parent_context
from jobqueue.protocol import Job
from workers.engines.base import Completion, GenerationRequest
from workers.job_sink import EngineCall, JobSink, TraceSpan
from workers.pipeline import SolvePipeline
from workers.tools.client import ToolCall

TRACER_NAME = "sciserve.worker"
WITHHELD = "sciserve.content_withheld"

Attributes = dict[str, Any]


async def solve(pipeline: SolvePipeline, job: Job, sink: JobSink) -> SolveResult:
    """`pipeline.solve` for a claimed job, under the job's spans when traces are on.
    The job span ends with the outcome: the result's usage, or the error that ended it
    (its outcome code; `timeout` once the job's deadline has passed)."""
    telemetry = pipeline.telemetry
    if not telemetry.enabled:
        return await pipeline.solve(job.id, job.request, sink, deadline=job.deadline)
    tracer = telemetry.tracer(TRACER_NAME)
    parent = parent_context(job.trace_context)
    claimed = time.time_ns()
    wait = tracer.start_span(
        "queue wait",
        context=parent,
        start_time=min(int(job.submitted_at * 1e9), claimed),
        attributes={
            SPAN_KIND: CHAIN,
            "sciserve.job.id": job.id,
            "sciserve.job.attempt": job.attempt,
        },
    )
    wait.end(end_time=claimed)
    request = job.request
    span = tracer.start_span(
        "job", context=parent, start_time=claimed, attributes=job_attributes(job, telemetry.content)
    )
    options = SpanOptions(
        tracer=tracer,
        content=telemetry.content,
        # TPO outputs hold the hidden thought; a job without reveal_thoughts keeps it so.
        hide_outputs=request.strategy.think and not request.reveal_thoughts,
        # gen_ai.provider.name: the engine's backend (none is a well-known value).
        provider=getattr(pipeline.engine, "provider_name", "sciserve"),
        model=model_name(pipeline.engine.model_name),
    )
    try:
        result = await pipeline.solve(
            job.id, request, TracingSink(sink, OtelSpan(options, span)), deadline=job.deadline
        )
    except BaseException as exc:
        span.set_attribute("sciserve.outcome", _outcome(exc, job))
        end_span(span, exc)
        raise
    span.set_attributes(result_attributes(result, telemetry.content))
    span.end()
    return result


def _outcome(exc: BaseException, job: Job) -> str:
    """The outcome code a job span ends with (contract.errors.Outcome's values, plus
    `interrupted`: cancelled by its client, or handed back to the queue at shutdown)."""
    if isinstance(exc, SciserveError):
        return exc.outcome.value
    if isinstance(exc, TimeoutError) or time.time() >= job.deadline:
        return "timeout"
    if isinstance(exc, asyncio.CancelledError):
        return "interrupted"
    return "internal"


def model_name(name: str) -> str:
    """A served model's name for a span: a local folder's own name, not its path."""
    return PurePath(name).name if name.startswith(("/", ".")) else name


class TracingSink(JobSink):
    """The loop's sink with the job's span: everything else goes to `inner`."""

    def __init__(self, inner: JobSink, span: TraceSpan):
        self.inner = inner
        self.span = span
        self.streams = inner.streams

    async def on_stage(self, event: TraceEvent) -> None:
        await self.inner.on_stage(event)

    async def on_delta(self, text: str) -> None:
        await self.inner.on_delta(text)

    def on_engine_call(self, call: EngineCall) -> None:
        self.inner.on_engine_call(call)


@dataclass(frozen=True)
class SpanOptions:
    """What every span of one job shares."""

    tracer: Tracer
    content: bool  # prompts and outputs may be recorded
    hide_outputs: bool  # engine outputs may hold hidden thoughts
    provider: str
    model: str  # the served base model's name


class OtelSpan(TraceSpan):
    """A `TraceSpan` over an OpenTelemetry span."""

    def __init__(self, options: SpanOptions, span: Span):
        self.options = options
        self.otel = span

    def _child(
        self, name: str, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL
    ) -> OtelSpan:
        span = self.options.tracer.start_span(
            name, context=trace.set_span_in_context(self.otel), kind=kind, attributes=attributes
        )
        return OtelSpan(self.options, span)

    def headers(self) -> dict[str, str]:
        return carrier(self.otel)

    def stage(self, name: str, role: str | None) -> TraceSpan:
        return self._child(
            name, {SPAN_KIND: CHAIN, "sciserve.stage": name, "sciserve.role": role or "base"}
        )

    def vote(self, samples: int) -> TraceSpan:
        return self._child("vote", {SPAN_KIND: CHAIN, "sciserve.vote.samples": samples})

    def sample(self, index: int) -> TraceSpan:
        return self._child("sample", {SPAN_KIND: CHAIN, "sciserve.sample.index": index})

    def engine_call(self, request: GenerationRequest) -> TraceSpan:
        attributes = request_attributes(request, self.options)
        name = f"{attributes['gen_ai.operation.name']} {attributes['gen_ai.request.model']}"
        return self._child(name, attributes, SpanKind.CLIENT)

    def tool_call(self, tool: str, arguments: Mapping[str, Any]) -> TraceSpan:
        attributes: Attributes = {
            SPAN_KIND: TOOL,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.type": "function",
            "tool.name": tool,
        }
        if self.options.content:
            arguments_json = _json(arguments)
            attributes.update(
                {
                    "gen_ai.tool.call.arguments": arguments_json,
                    "tool.parameters": arguments_json,
                    "input.value": arguments_json,
                    "input.mime_type": "application/json",
                }
            )
        return self._child(f"execute_tool {tool}", attributes)

    def end_stage(self, event: TraceEvent) -> None:
        self.otel.set_attributes(stage_attributes(event, self.options.content))
        self.otel.end()

    def end_engine_call(self, completion: Completion) -> None:
        self.otel.set_attributes(completion_attributes(completion, self.options))
        self.otel.end()

    def end_tool_call(self, call: ToolCall) -> None:
        self.otel.set_attributes(
            {
                "sciserve.tool.server": call.server,
                "sciserve.tool.status_code": call.status_code,
                "sciserve.tool.elapsed_ms": call.elapsed_ms,
            }
        )
        if self.options.content:
            result = _json({"result": call.result} if call.ok else {"error": call.error})
            self.otel.set_attributes(
                {
                    "gen_ai.tool.call.result": result,
                    "output.value": result,
                    "output.mime_type": "application/json",
                }
            )
        if not call.ok:
            self.otel.set_status(trace.Status(trace.StatusCode.ERROR, call.error or ""))
            self.otel.set_attribute("error.type", str(call.status_code))
        self.otel.end()

    def end_vote(self, report: Mapping[str, Any]) -> None:
        self.otel.set_attributes(vote_attributes(report))
        self.otel.end()

    def end_sample(self, finished: bool) -> None:
        self.otel.set_attribute("sciserve.sample.finished", finished)
        self.otel.end()

    def end(self, error: BaseException | None = None) -> None:
        end_span(self.otel, error)


def job_attributes(job: Job, content: bool) -> Attributes:
    request: SolveRequest = job.request
    strategy = request.strategy
    attributes: Attributes = {
        SPAN_KIND: CHAIN,
        "sciserve.job.id": job.id,
        "sciserve.job.attempt": job.attempt,
        "sciserve.strategy": strategy.name,
        "sciserve.strategy.samples": strategy.vote_size,
        "sciserve.strategy.attempts": strategy.attempts,
        "sciserve.strategy.tools": strategy.tools,
        "sciserve.strategy.think": strategy.think,
        "sciserve.strategy.art": strategy.art,
        "sciserve.strategy.stop": strategy.stop if isinstance(strategy.stop, str) else "confidence",
        "sciserve.answer_type": request.answer_type,
    }
    if content:
        attributes["input.value"] = request.problem
    return attributes


def result_attributes(result: SolveResult, content: bool) -> Attributes:
    usage = result.usage
    attributes: Attributes = {
        "sciserve.outcome": "succeeded",
        "sciserve.usage.prompt_tokens": usage.prompt_tokens,
        "sciserve.usage.completion_tokens": usage.completion_tokens,
        "sciserve.usage.thought_tokens": usage.thought_tokens,
        "sciserve.usage.tool_tokens": usage.tool_tokens,
        "sciserve.usage.engine_calls": usage.engine_calls,
        "sciserve.used_tools": list(result.used_tools),
    }
    if result.correct is not None:
        attributes["sciserve.correct"] = result.correct
    if content:
        attributes["output.value"] = result.answer_text
        if result.answer is not None:
            attributes["sciserve.answer"] = result.answer
    return attributes


def request_attributes(request: GenerationRequest, options: SpanOptions) -> Attributes:
    """GenAI inference attributes of an engine request (`gen_ai.request.model` is the
    adapter's name for a role, else the served model's)."""
    sampling = request.sampling
    model = request.role or options.model
    attributes: Attributes = {
        SPAN_KIND: LLM,
        "gen_ai.operation.name": "chat" if request.messages is not None else "text_completion",
        "gen_ai.provider.name": options.provider,
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": sampling.temperature,
        "gen_ai.request.top_p": sampling.top_p,
        "gen_ai.request.max_tokens": sampling.max_tokens,
        "sciserve.role": request.role or "base",
        "llm.model_name": model,
        "llm.invocation_parameters": _json(
            {
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_tokens": sampling.max_tokens,
                "n": request.n,
                "seed": sampling.seed,
            }
        ),
    }
    if request.n != 1:
        attributes["gen_ai.request.choice.count"] = request.n
    if sampling.seed is not None:
        attributes["gen_ai.request.seed"] = sampling.seed
    if sampling.stop:
        attributes["gen_ai.request.stop_sequences"] = list(sampling.stop)
    if options.content:
        if request.messages is not None:
            messages = [dict(m) for m in request.messages]
            attributes["gen_ai.input.messages"] = _json(
                [_message(m.get("role"), m.get("content")) for m in messages]
            )
            attributes["input.value"] = _json(messages)
            attributes["input.mime_type"] = "application/json"
            for i, message in enumerate(messages):
                attributes[f"llm.input_messages.{i}.message.role"] = str(message.get("role"))
                attributes[f"llm.input_messages.{i}.message.content"] = str(message.get("content"))
        else:
            attributes["input.value"] = request.prompt
    return attributes


def completion_attributes(completion: Completion, options: SpanOptions) -> Attributes:
    reasons = [str(reason or "unknown") for reason in completion.finish_reasons]
    attributes: Attributes = {
        "gen_ai.usage.input_tokens": completion.prompt_tokens,
        "gen_ai.usage.output_tokens": completion.completion_tokens,
        "gen_ai.response.finish_reasons": reasons,
        "llm.token_count.prompt": completion.prompt_tokens,
        "llm.token_count.completion": completion.completion_tokens,
        "llm.token_count.total": completion.prompt_tokens + completion.completion_tokens,
    }
    if not options.content:
        return attributes
    if options.hide_outputs:
        attributes[WITHHELD] = "hidden thoughts"
        return attributes
    attributes["gen_ai.output.messages"] = _json(
        [
            {**_message("assistant", text), "finish_reason": reason}
            for text, reason in zip(completion.texts, reasons, strict=True)
        ]
    )
    texts = completion.texts
    attributes["output.value"] = texts[0] if len(texts) == 1 else _json(texts)
    for i, text in enumerate(texts):
        attributes[f"llm.output_messages.{i}.message.role"] = "assistant"
        attributes[f"llm.output_messages.{i}.message.content"] = text
    return attributes


# A stage detail's decisions and counts, by key: model outputs stay out (`_CONTENT`).
_DECISIONS = {
    "mode": "sciserve.mode",
    "samples": "sciserve.samples",
    "tools_shown": "sciserve.tools_shown",
    "tools_unavailable": "sciserve.tools_unavailable",
    "format_breaks": "sciserve.tpo.format_breaks",
    "resampled": "sciserve.tpo.resampled",
    "format_breaks_after_resample": "sciserve.tpo.format_breaks_after_resample",
    "round": "sciserve.selfcorrect.round",
    "refined": "sciserve.art.refined",
    "choices": "sciserve.art.truster_choices",
    "method": "sciserve.vote.method",
    "examples": "sciserve.few_shot.examples",
    "retrieval": "sciserve.few_shot.retrieval",
    "step": "sciserve.plan.step",
    "aborted": "sciserve.stage.aborted",
    "budget_spent": "sciserve.stage.budget_spent",
}
_CONTENT = {
    "answers": "sciserve.answers",
    "answers_before": "sciserve.answers_before",
    "answers_after": "sciserve.answers_after",
    "answers_initial": "sciserve.art.answers_initial",
    "answers_refined": "sciserve.art.answers_refined",
    "greedy_answer": "sciserve.vote.greedy_answer",
    "answer": "sciserve.vote.answer",
    "tied": "sciserve.vote.tied",
}


def stage_attributes(event: TraceEvent, content: bool) -> Attributes:
    """A finished stage: its tokens, its decisions (AWL's tool-or-direct, the Asker's
    refine-or-skip, the Truster's choices, the vote and how it stopped), and with
    `content` the answers it read."""
    detail = event.detail
    attributes: Attributes = {
        "sciserve.usage.prompt_tokens": event.prompt_tokens,
        "sciserve.usage.completion_tokens": event.completion_tokens,
        "sciserve.usage.thought_tokens": event.thought_tokens,
        "sciserve.usage.tool_tokens": event.tool_tokens,
        "sciserve.usage.engine_calls": event.engine_calls,
    }
    for key, name in _DECISIONS.items():
        if key in detail and (value := _attribute(detail[key])) is not None:
            attributes[name] = value
    decisions = detail.get("decisions")
    if isinstance(decisions, list):  # generate: AWL's tool decision (TUA); art_ask: refine
        name = "sciserve.art.decisions" if event.stage == "art_ask" else "sciserve.tool_decisions"
        attributes[name] = [str(d) for d in decisions]
    calls = detail.get("tool_calls")
    if isinstance(calls, list):
        attributes["sciserve.tool_calls"] = sum(len(c) if isinstance(c, list) else 1 for c in calls)
    flips = detail.get("flips")
    if isinstance(flips, dict):
        for direction, count in flips.items():
            attributes[f"sciserve.selfcorrect.flips.{direction}"] = int(count)
    votes = detail.get("votes")
    if isinstance(votes, dict):  # answer -> count; the answers are outputs
        attributes["sciserve.vote.counts"] = sorted((int(v) for v in votes.values()), reverse=True)
        if content:
            attributes["sciserve.vote.votes"] = _json(votes)
    if isinstance(detail.get("stop"), dict):
        attributes.update(vote_attributes(detail["stop"]))
    if content:
        for key, name in _CONTENT.items():
            if key in detail and (value := _attribute(detail[key])) is not None:
                attributes[name] = value
    return attributes


def vote_attributes(stop: Mapping[str, Any]) -> Attributes:
    """How a vote ended (sample_race.RaceReport.detail): the stop rule, the samples
    used, stopped and never started, and strategy.auto's decision."""
    rule = stop.get("rule")
    attributes: Attributes = {
        "sciserve.vote.stop.rule": rule if isinstance(rule, str) else _json(rule),
        "sciserve.vote.window": int(stop.get("window") or 0),
        "sciserve.vote.samples": int(stop.get("samples") or 0),
        "sciserve.vote.used": int(stop.get("used") or 0),
        "sciserve.vote.stopped_early": bool(stop.get("stopped_early")),
        "sciserve.vote.aborted": len(stop.get("aborted") or ()),
        "sciserve.vote.not_started": len(stop.get("not_started") or ()),
        "sciserve.vote.tokens_saved_estimate": int(stop.get("tokens_saved_estimate") or 0),
    }
    auto = stop.get("auto")
    if isinstance(auto, dict):
        attributes["sciserve.auto.escalated"] = bool(auto.get("escalated"))
        attributes["sciserve.auto.measure"] = str(auto.get("measure"))
        for key in ("confidence", "threshold"):
            if isinstance(auto.get(key), int | float):
                attributes[f"sciserve.auto.{key}"] = float(auto[key])
    return attributes


def _attribute(value: Any) -> Any:
    """A detail value as an OTel attribute: primitives, homogeneous lists of them (None
    as "none"), anything else as JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence) and all(
        isinstance(v, str | int | float | bool) or v is None for v in value
    ):
        items = ["none" if v is None else v for v in value]
        if len({type(v) for v in items}) <= 1:
            return items
        return [str(v) for v in items]
    if value is None:
        return None
    return _json(value)


def _message(role: Any, text: Any) -> dict[str, Any]:
    """One message as the GenAI conventions' `gen_ai.*.messages` hold it."""
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
