"""The trace sink: every finished job as one JSON record, for training data.

Opt-in (`SCISERVE_TRACE_SINK=/dir`). A record holds the request, the strategy, every
stage's trace event with the engine calls it made (prompts as the engine saw them,
outputs, token counts), the tool calls with arguments and results (in each stage's
detail), the answers and, when a reference was given, correctness. The format is
versioned (`FORMAT`, `VERSION`); `training/records.py` reads it and the README's
"Training loop" section documents it.

Thoughts follow the rule of responses: a job whose request may not reveal them
(`reveal_thoughts` needs its scope at the gateway) is written with every think-mode
output cut to what its user may see, by the rule `SolveContext.read` serves it by
(workers/strategies/reading.py `hide_thought`): after a format break, the final answer
the output states and nothing else.

The worker loop's sink for a job (workers/job_sink.py) collects its engine calls and
stage events while the job runs, when a trace sink is on (`Recorder`); the loop's one
call (`keep`) writes them when the job succeeded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.answers import extract_answer, resolve_type
from contract.schemas import SolveRequest, SolveResult, TraceEvent
from contract.settings import get_settings
from workers.job_sink import EngineCall
from workers.prompts import think_markers
from workers.strategies.reading import asks_thought_format, hide_thought

if TYPE_CHECKING:
    from jobqueue.protocol import Job
    from workers.engines.base import Engine, GenerationRequest

log = logging.getLogger(__name__)
FORMAT = "sciserve.trace"
VERSION = 1


class TraceSink:
    """Appends records to JSONL files in `directory`, one file until it would pass
    `max_bytes`, then the next (`traces-<UTC time>-<n>.jsonl`). Thread-safe: records
    are written from a thread so a slow disk never stalls the event loop."""

    def __init__(self, directory: Path, max_bytes: int = 64 << 20):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._size = 0
        self._files = 0

    def write(self, record: dict[str, Any]) -> Path:
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        with self._lock:
            if self._path is None or (self._size and self._size + len(line) > self.max_bytes):
                self._rotate()
            assert self._path is not None
            with self._path.open("ab") as handle:
                handle.write(line)
            self._size += len(line)
            return self._path

    def _rotate(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self._files += 1
        self._path = self.directory / f"traces-{stamp}-{self._files:04d}.jsonl"
        while self._path.exists():  # a restarted worker never appends to an old file
            self._files += 1
            self._path = self.directory / f"traces-{stamp}-{self._files:04d}.jsonl"
        self._size = 0


_sink: TraceSink | None = None
_configured = False


def configure(sink: TraceSink | None) -> None:
    """Set the process's sink explicitly (tests, embedders); None turns it off."""
    global _sink, _configured
    _sink, _configured = sink, True


def sink() -> TraceSink | None:
    """The process's sink, from `SCISERVE_TRACE_SINK` on first use unless configured."""
    global _sink, _configured
    if not _configured:
        settings = get_settings()
        if settings.trace_sink is not None:
            _sink = TraceSink(settings.trace_sink, settings.trace_max_bytes)
        _configured = True
    return _sink


@dataclass
class Recorder:
    """What one running job's record needs: its engine calls and its stage events."""

    calls: list[EngineCall] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)


def recorder() -> Recorder | None:
    """A recorder for a job that starts now, or None when no sink is on (then nothing
    of the job is kept)."""
    return Recorder() if sink() is not None else None


async def keep(job: Job, result: SolveResult, recorded: Recorder, engine: Engine) -> None:
    """Write the record of a job that succeeded. Never fails the job: a sink error is
    logged, the result is served all the same."""
    target = sink()
    if target is None:
        return
    try:
        record = build_record(job, result, recorded, engine)
        await asyncio.to_thread(target.write, record)
    except Exception as exc:
        log.warning("job %s: trace record not written (%s)", job.id, exc)


def build_record(
    job: Job, result: SolveResult, recorded: Recorder, engine: Engine
) -> dict[str, Any]:
    """One job as a JSON-ready dict (format `sciserve.trace`, version 1)."""
    request = job.request
    reveal = request.reveal_thoughts  # the gateway allowed it (SolveContext.reveal)
    strategy = request.strategy
    answer_type = resolve_type(request.answer_type, request.options, request.reference)
    calls: dict[int, list[dict[str, Any]]] = {}
    for stage_index, gen, completion in (
        (call.stage, call.request, call.completion) for call in recorded.calls
    ):
        outputs = completion.texts if reveal else visible_outputs(request, gen, completion.texts)
        calls.setdefault(stage_index, []).append(
            {
                "messages": [dict(m) for m in gen.messages or ()],
                "prompt": gen.prompt,
                "role": gen.role or "base",
                "n": gen.n,
                "temperature": gen.sampling.temperature,
                "max_tokens": gen.sampling.max_tokens,
                "outputs": outputs,
                "finish_reasons": list(completion.finish_reasons),
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            }
        )
    stages = [
        {**event.model_dump(), "calls": calls.get(index, [])}
        for index, event in enumerate(recorded.events)
    ]
    answer = result.model_dump(
        include={"answer", "answer_text", "correct", "initial_answer", "used_tools"}
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "id": job.id,
        "finished_at": time.time(),
        "model": getattr(engine, "model_name", None),
        "adapters": sorted(engine.adapters()),
        "request": request.model_dump(),
        "strategy": {**strategy.model_dump(), "name": strategy.name},
        "answer_type": answer_type,
        "result": answer,
        "correct": result.correct,
        "thoughts": result.thoughts if reveal else None,
        "thoughts_revealed": reveal,
        "usage": result.usage.model_dump(),
        "timings": result.timings.model_dump(),
        "stages": stages,
        "tool_calls": _tool_calls(recorded.events),
    }


def visible_outputs(
    job: SolveRequest, request: GenerationRequest, texts: Sequence[str]
) -> list[str]:
    """An engine call's outputs as the job's user may see them: a think-mode (TPO) job's
    cut by `hide_thought`, the rule its responses are served by (its request tells
    whether it was asked for TPO's format, as the stage that read it knew); any other
    job's whole."""
    if not job.strategy.think:
        return list(texts)
    answer_type = resolve_type(job.answer_type, job.options, job.reference)

    def read(text: str) -> str | None:  # the job's answer reader (SolveContext.extract)
        return extract_answer(text, answer_type, job.options)

    variant = job.strategy.think_prompt
    asked = asks_thought_format(request.messages, variant)
    markers = think_markers(variant)
    return [hide_thought(text, markers, read, format_asked=asked).visible for text in texts]


def _tool_calls(events: list[TraceEvent]) -> list[dict[str, Any]]:
    """Every tool call of the job in order (tool, server, arguments, result, error,
    status, time), from the stages' details, where they are per candidate."""
    found: list[dict[str, Any]] = []
    for event in events:
        for per_candidate in event.detail.get("tool_calls") or []:
            found.extend(dict(call) for call in per_candidate)
    return found
