"""Streaming the final answer's text while the engine generates it.

A job asks for it with `SolveRequest.stream`. The worker loop sets the job's delta
sink (`publishing`), which publishes `{"type": "delta", "text": ...}` on the job's
event stream; the generate stage hands the engine a text callback (`answer_stream`)
when its output *is* the final answer: one sample, no refine stage, no tools.

The sink travels in a context variable because the job's asyncio task is the one
thing that both the worker loop and the stage share without threading a new
argument through the pipeline and every stage: each job runs in its own task, so a
sink never reaches another job's stages.

Everything published is a prefix of the answer text the job's result will carry:
TPO's thought is held back until the response marker, leading whitespace after it is
dropped and trailing whitespace is published only once more text follows (the
result's response is stripped).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from contract.schemas import SolveRequest
from workers.prompts import think_markers

TextSink = Callable[[str], Awaitable[None]]

_SINK: ContextVar[TextSink | None] = ContextVar("sciserve_delta_sink", default=None)


@contextmanager
def publishing(sink: TextSink) -> Iterator[None]:
    """Inside this block, generate stages of this task stream to `sink`."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


def streams_final_answer(request: SolveRequest) -> bool:
    """Whether the generate stage's one output becomes the answer unchanged."""
    strategy = request.strategy
    return request.stream and strategy.samples == 1 and strategy.attempts == 1 and not strategy.art


class VisibleText:
    """Turns the engine's text pieces into pieces of the visible response.

    `marker` is TPO's response marker (think mode): nothing before its end is ever
    released, because everything up to it is the hidden thought.
    """

    def __init__(self, marker: str | None = None):
        self.marker = marker
        self._raw = ""  # everything received, while the marker is still awaited
        self._open = marker is None  # past the marker (or no marker needed)
        self._started = False  # something non-blank has been released
        self._held = ""  # trailing whitespace not yet released

    def feed(self, piece: str) -> str:
        """The text to release for this piece ("" if none yet)."""
        if not self._open:
            assert self.marker is not None
            self._raw += piece
            at = self._raw.find(self.marker)
            if at < 0:
                return ""
            self._open = True
            piece = self._raw[at + len(self.marker) :]
            self._raw = ""
        if not self._started:
            piece = piece.lstrip()
            if not piece:
                return ""
            self._started = True
        text = self._held + piece
        body = text.rstrip()
        self._held = text[len(body) :]
        return body


def answer_stream(request: SolveRequest, think: bool) -> TextSink | None:
    """The engine's text callback for the generate stage's single greedy request, or
    None when this job's answer is not streamed (not asked for, several samples, a
    refine stage, or no sink in this task)."""
    sink = _SINK.get()
    if sink is None or not streams_final_answer(request):
        return None
    marker = think_markers(request.strategy.think_prompt)[1] if think else None
    visible = VisibleText(marker)

    async def on_text(piece: str) -> None:
        text = visible.feed(piece)
        if text:
            await sink(text)

    return on_text
