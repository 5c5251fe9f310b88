"""`stream: true`: a job's event stream as OpenAI chat completion chunks (SSE).

- the first chunk (the assistant role) goes out as soon as a worker claims the job;
- every finished stage becomes a progress chunk: no choices, the stage in `sciserve`
  (the SDK skips chunks without choices);
- `delta` events (the answer's text while the engine generates it, for the strategies
  whose single generation is the answer: workers/streaming.py) become content deltas;
- at the end, whatever of the answer was not streamed yet (all of it, for votes and
  refine stages), the revealed thoughts as `reasoning`, the calls of client functions
  as `tool_calls` deltas (`tool_call_deltas`), the finish reason with the `sciserve`
  extension, the usage chunk if asked, and `[DONE]`.

A client that disconnects cancels its job, as on /solve.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from app.metrics import REQUEST_DURATION, REQUESTS
from app.openai.errors import error_detail
from app.openai.translate import chat_usage, content_of, extension, finish_reason
from app.solving import REQUEST_OUTCOMES, deadline_passed, wait_limit_s
from contract.errors import JobTimeoutError, Outcome, error_for_outcome
from contract.schemas import ClientToolCall, JobState, SolveRequest
from contract.settings import Settings
from jobqueue.protocol import FINAL_STATES, JobQueue

log = logging.getLogger(__name__)
Event = dict[str, str]


ARGUMENT_PIECE_CHARS = 24  # the arguments of a call go out in pieces of this size
# Keys of a queue `stage` event a progress chunk leaves out (workers/stage_events.py).
STAGE_PRIVATE = frozenset(
    {"type", "job_id", "index", "detail", "calls", "calls_not_listed", "truncated"}
)


def tool_call_deltas(index: int, call: ClientToolCall) -> list[dict[str, Any]]:
    """One call of a client function as OpenAI streams it: the first delta carries its
    index, id, type and name with empty arguments, the next ones carry the arguments'
    text in pieces, each with the index only, which the SDK's accumulator joins."""
    first = {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    text = call.arguments
    pieces = [
        text[at : at + ARGUMENT_PIECE_CHARS] for at in range(0, len(text), ARGUMENT_PIECE_CHARS)
    ]
    return [first, *({"index": index, "function": {"arguments": piece}} for piece in pieces)]


class ChunkStream:
    """The chunks of one streamed chat completion for the job `job_id`."""

    def __init__(
        self,
        queue: JobQueue,
        job_id: str,
        request: SolveRequest,
        model: str,
        settings: Settings,
        include_usage: bool,
    ):
        self.queue, self.job_id, self.request, self.model = queue, job_id, request, model
        self.settings, self.include_usage = settings, include_usage
        self.created = int(time.time())
        self.streamed = ""  # the answer's text sent so far

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> Event:
        body = {
            "id": f"chatcmpl-{self.job_id}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return {"data": json.dumps(body)}

    def _delta(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Event:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._chunk([choice], **extra)

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        """The job's events until `done`, within its deadline plus the grace."""
        timeout = wait_limit_s(self.request, self.settings)
        deadline = time.monotonic() + timeout
        events = self.queue.events(self.job_id).__aiter__()
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = await asyncio.wait_for(events.__anext__(), max(remaining, 0.001))
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise deadline_passed(self.job_id, timeout) from None
            yield event
            if event.get("type") == "done":
                return

    async def chunks(self) -> AsyncIterator[Event]:
        started = time.perf_counter()
        strategy = self.request.strategy.name
        finished = False
        try:
            opened = False
            try:
                async for event in self._events():
                    kind = event.get("type")
                    if not opened and kind != "done":
                        opened = True
                        yield self._delta(
                            {"role": "assistant", "content": ""},
                            sciserve={"event": "claimed", "job_id": self.job_id},
                        )
                    if kind == "stage":
                        # The stage's name, tokens and time; its detail and engine calls are
                        # the trace page's (thoughts among them), not the chat stream's.
                        stage = {k: v for k, v in event.items() if k not in STAGE_PRIVATE}
                        yield self._chunk([], sciserve={"event": "stage", **stage})
                    elif kind == "delta" and event.get("text"):
                        self.streamed += str(event["text"])
                        yield self._delta({"content": event["text"]})
            except JobTimeoutError as exc:
                finished = True
                REQUESTS.labels(strategy=strategy, outcome="timeout").inc()
                yield self._error(exc)
                yield {"data": "[DONE]"}
                return
            status = await self.queue.status(self.job_id)
            finished = status.status in FINAL_STATES
            REQUEST_DURATION.labels(strategy=strategy).observe(time.perf_counter() - started)
            if status.status == JobState.succeeded and status.result is not None:
                REQUESTS.labels(strategy=strategy, outcome="ok").inc()
                if not opened:
                    yield self._delta({"role": "assistant", "content": ""})
                for chunk in self._ending(status.result):
                    yield chunk
            else:
                outcome = status.error_code or Outcome.internal
                REQUESTS.labels(strategy=strategy, outcome=REQUEST_OUTCOMES[outcome]).inc()
                yield self._error(
                    error_for_outcome(outcome, status.error or f"Job {self.job_id} failed.")
                )
            yield {"data": "[DONE]"}
        finally:
            if not finished:  # the client went away (or the stream broke): stop the job
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.queue.cancel(self.job_id))
                REQUESTS.labels(strategy=strategy, outcome="cancelled").inc()

    def _error(self, exc: Any) -> Event:
        _, detail = error_detail(exc)
        return {"data": json.dumps({"error": detail.model_dump()})}

    def _ending(self, result: Any) -> list[Event]:
        content = content_of(result)
        chunks = []
        if content.startswith(self.streamed):
            rest = content[len(self.streamed) :]
            if rest:
                chunks.append(self._delta({"content": rest}))
        else:  # never expected: the worker streams only a prefix of the answer
            log.warning("job %s: streamed text is not a prefix of the answer", self.job_id)
            chunks.append(self._chunk([], sciserve={"event": "answer", "content": content}))
        if result.thoughts:
            chunks.append(self._delta({"reasoning": result.thoughts}))
        for index, call in enumerate(result.tool_calls or ()):
            chunks.extend(
                self._delta({"tool_calls": [delta]}) for delta in tool_call_deltas(index, call)
            )
        chunks.append(
            self._delta(
                {},
                finish_reason(result, self.request.strategy),
                sciserve=extension(result, self.request.strategy, self.model),
            )
        )
        if self.include_usage:
            chunks.append(self._chunk([], usage=chat_usage(result.usage).model_dump()))
        return chunks
