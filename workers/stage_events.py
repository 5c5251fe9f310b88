"""A job's `stage` events as its event stream carries them (`GET /jobs/{id}/events`) and
its trace page shows them: each stage's trace event with its detail and the engine calls
the stage made (each call's outputs, tokens and finish reasons), every piece bounded.

Every job keeps these events as long as its result (the queue's event log shares the
result's TTL), whether or not its request asked for `return_trace`. So each string, list
and mapping is cut here (`bounded`), and a job's events together stay under
`MAX_JOB_BYTES` whatever its strategy (a vote of 64 samples with tool loops included):
past it, an event keeps its stage, tokens and duration and says `truncated`.

Thoughts: an engine call's outputs are cut to what the job's user may see by the rule
its responses are served by (`traces.visible_outputs`, TPO's `hide_thought`); a stage's
`detail.thoughts` is there only when the request may reveal them, and the gateway removes
it again for a reader without the scope, as it does from a result's trace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from contract.schemas import SolveRequest, TraceEvent
from workers.job_sink import EngineCall
from workers.traces import visible_outputs

MAX_TEXT_CHARS = 2_000  # one string: an output, a tool result, an argument
MAX_ITEMS = 64  # one list or mapping (a vote holds at most 64 samples)
MAX_DEPTH = 8
MAX_CALLS = 32  # engine calls listed with a stage; the rest are only counted
MAX_JOB_BYTES = 256 * 1024  # a job's details and calls together, as JSON


def bounded(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-ready data no larger than the limits above: long strings end in a
    note of what was cut, long lists and mappings too; a float that JSON cannot hold
    (an infinite log probability) is None, so a browser's JSON.parse never fails."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT_CHARS:
            return value
        return f"{value[:MAX_TEXT_CHARS]}… ({len(value) - MAX_TEXT_CHARS} more characters)"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        items = list(value.items())
        kept = {str(key)[:200]: bounded(item, depth + 1) for key, item in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            kept["…"] = f"{len(items) - MAX_ITEMS} more"
        return kept
    if isinstance(value, list | tuple):
        cut = [bounded(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            cut.append(f"… {len(value) - MAX_ITEMS} more")
        return cut
    return bounded(str(value), depth)


def call_record(job: SolveRequest, call: EngineCall) -> dict[str, Any]:
    """One engine call as the page shows it: who answered (the adapter role), how it was
    sampled, what it returned (visible outputs only) and its tokens."""
    request, completion = call.request, call.completion
    return {
        "role": request.role or "base",
        "n": request.n,
        "temperature": request.sampling.temperature,
        "max_tokens": request.sampling.max_tokens,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "finish_reasons": list(completion.finish_reasons),
        "outputs": bounded(visible_outputs(job, request, completion.texts)),
    }


class StageEvents:
    """One job's stage events for its event stream. Engine calls arrive first (the
    stage's index with each, `EngineCall.stage`), then the stage's event, which takes the
    calls made under its index; stages reach the sink in trace order, so the count of
    events so far is the next one's index."""

    def __init__(self, job: SolveRequest):
        self.job = job
        self.index = 0
        self.spent = 0  # bytes of detail and calls published so far
        self._calls: list[EngineCall] = []

    def on_engine_call(self, call: EngineCall) -> None:
        self._calls.append(call)

    def event(self, stage: TraceEvent) -> dict[str, Any]:
        """The `stage` event of the job's next stage."""
        mine = [call for call in self._calls if call.stage <= self.index]
        self._calls = [call for call in self._calls if call.stage > self.index]
        event: dict[str, Any] = {
            "type": "stage",
            "index": self.index,
            **stage.model_dump(exclude={"detail"}),
        }
        self.index += 1
        extra: dict[str, Any] = {
            "detail": bounded(stage.detail),
            "calls": [call_record(self.job, call) for call in mine[:MAX_CALLS]],
        }
        if len(mine) > MAX_CALLS:
            extra["calls_not_listed"] = len(mine) - MAX_CALLS
        size = len(json.dumps(extra))
        if self.spent + size > MAX_JOB_BYTES:
            return {**event, "detail": {}, "calls": [], "truncated": True}
        self.spent += size
        return {**event, **extra}
