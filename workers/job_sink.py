"""Where one job's effects go while it runs: its stage events, its answer's text as it is
generated, and its engine calls.

The worker loop (`workers/loop.py` `run_job`) builds one `JobSink` per job and hands it
to the pipeline, which gives it to the job's `SolveContext`; stages reach it only
through the context. So every effect of a job is visible where the job is run, and a
sink never reaches another job (no module-level registry, no context variable).

The base class does nothing, so a pipeline run without a loop (tests, embedders)
needs no sink of its own.

A sink also carries the job's trace span (`span`): stages open their spans under it
through the context (`SolveContext.span`), so the job's OpenTelemetry trace is built
from the same explicit object (workers/job_spans.py); the base span records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.schemas import TraceEvent
from workers.engines.base import Completion, GenerationRequest
from workers.tools.client import ToolCall


@dataclass(frozen=True)
class EngineCall:
    """One engine request of a job with what it returned; `stage` is the index of the
    trace event of the stage that made it (stages run one after another)."""

    stage: int
    request: GenerationRequest
    completion: Completion


class TraceSpan:
    """One span of a job's trace as the pipeline sees it: the job, the vote, a sample, a
    stage, an engine call or a tool call. Children are opened by kind and ended with what
    they produced; `headers` is the W3C trace context a call made under the span carries
    (vLLM's `trace_headers`, a tool server's `traceparent`). This base records nothing;
    workers/job_spans.py's spans are OpenTelemetry's."""

    def stage(self, name: str, role: str | None) -> TraceSpan:
        return self

    def sample(self, index: int) -> TraceSpan:
        return self

    def vote(self, samples: int) -> TraceSpan:
        return self

    def engine_call(self, request: GenerationRequest) -> TraceSpan:
        return self

    def tool_call(self, tool: str, arguments: Mapping[str, Any]) -> TraceSpan:
        return self

    def headers(self) -> dict[str, str]:
        return {}

    def end_stage(self, event: TraceEvent) -> None:
        """A stage span's end, with the stage's trace event."""

    def end_engine_call(self, completion: Completion) -> None:
        """An engine-call span's end, with what the engine returned."""

    def end_tool_call(self, call: ToolCall) -> None:
        """A tool-call span's end, with the call as the trace records it."""

    def end_vote(self, report: Mapping[str, Any]) -> None:
        """A vote span's end, with how the vote ended (sample_race.RaceReport.detail)."""

    def end_sample(self, finished: bool) -> None:
        """A sample span's end: `finished` False when the vote stopped it first."""

    def end(self, error: BaseException | None = None) -> None:
        """Any span's end without a result: the error that ended it, if any."""


NO_SPAN = TraceSpan()


class JobSink:
    """One job's listener. Every method is best effort for its caller: a sink must not
    fail the job (the loop's sink logs its own errors)."""

    streams: bool = False  # whether `on_delta` goes anywhere: no stream is set up if not
    span: TraceSpan = NO_SPAN  # the job's span, which every stage's span hangs under

    async def on_stage(self, event: TraceEvent) -> None:
        """A stage finished; `event` is its trace event (with its full detail)."""

    async def on_delta(self, text: str) -> None:
        """More of the final answer's visible text (workers/streaming.py decides it)."""

    def on_engine_call(self, call: EngineCall) -> None:
        """An engine request returned; its tokens are already in the job's usage."""


NO_SINK = JobSink()
