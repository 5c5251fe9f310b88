"""Where one job's effects go while it runs: its stage events, its answer's text as it is
generated, and its engine calls.

The worker loop (`workers/loop.py` `run_job`) builds one `JobSink` per job and hands it
to the pipeline, which gives it to the job's `SolveContext`; stages reach it only
through the context. So every effect of a job is visible where the job is run, and a
sink never reaches another job (no module-level registry, no context variable).

The base class does nothing, so a pipeline run without a loop (tests, embedders)
needs no sink of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.schemas import TraceEvent
from workers.engines.base import Completion, GenerationRequest


@dataclass(frozen=True)
class EngineCall:
    """One engine request of a job with what it returned; `stage` is the index of the
    trace event of the stage that made it (stages run one after another)."""

    stage: int
    request: GenerationRequest
    completion: Completion


class JobSink:
    """One job's listener. Every method is best effort for its caller: a sink must not
    fail the job (the loop's sink logs its own errors)."""

    streams: bool = False  # whether `on_delta` goes anywhere: no stream is set up if not

    async def on_stage(self, event: TraceEvent) -> None:
        """A stage finished; `event` is its trace event (with its full detail)."""

    async def on_delta(self, text: str) -> None:
        """More of the final answer's visible text (workers/streaming.py decides it)."""

    def on_engine_call(self, call: EngineCall) -> None:
        """An engine request returned; its tokens are already in the job's usage."""


NO_SINK = JobSink()
