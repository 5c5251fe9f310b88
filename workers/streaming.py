"""Streaming the final answer's text while the engine generates it.

A job asks for it with `SolveRequest.stream`. The worker loop's sink for the job
(workers/job_sink.py `on_delta`) publishes `{"type": "delta", "text": ...}` on the
job's event stream; the generate stage hands the engine a text callback
(`answer_stream`) when its output *is* the final answer: one sample, no refine stage,
no tools (`Strategy.single_output`).

Everything published is a prefix of the answer text the job's result will carry
(stripped, as the result's response is): leading whitespace is dropped and trailing
whitespace is published only once more text follows. A think (TPO) output is held back
whole while it is generated: its response follows the LAST marker, so a later marker
would hide what came before it, and without a marker only the final answer it states
is visible (workers/strategies/reading.py `hide_thought`). The generate stage then
`settle`s the stream with the answer text that rule gave, after any resample.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from contract.schemas import SolveRequest
from workers.job_sink import JobSink

TextSink = Callable[[str], Awaitable[None]]


class VisibleText:
    """Turns the engine's text pieces into pieces of the visible answer.

    `held` (think mode): nothing is released while the output is generated, since no
    part of an unfinished TPO output is sure to be visible (`hide_thought`); `settle`
    releases the answer once it is decided.
    """

    def __init__(self, held: bool = False):
        self.held = held
        self.released = ""  # everything released so far
        self._trailing = ""  # trailing whitespace not yet released

    def feed(self, piece: str) -> str:
        """The text to release for this piece ("" if none yet)."""
        if self.held:
            return ""
        if not self.released:
            piece = piece.lstrip()
            if not piece:
                return ""
        text = self._trailing + piece
        body = text.rstrip()
        self._trailing = text[len(body) :]
        self.released += body
        return body

    def settle(self, answer_text: str) -> str:
        """What remains to release of the answer text the result will carry, once the
        generate stage has decided it; "" when the released text is not its start
        (never expected: then the gateway sends the answer with the result)."""
        answer = answer_text.strip()
        if not answer.startswith(self.released):
            return ""
        rest = answer[len(self.released) :]
        self.released = answer
        self._trailing = ""
        return rest


class AnswerStream:
    """The engine's text callback for the greedy generation whose output is the answer
    (call it with each piece), and `settle` for the answer text the stage decided."""

    def __init__(self, sink: TextSink, think: bool):
        self._sink = sink
        self._visible = VisibleText(held=think)

    async def __call__(self, piece: str) -> None:
        await self._publish(self._visible.feed(piece))

    async def settle(self, answer_text: str) -> None:
        await self._publish(self._visible.settle(answer_text))

    async def _publish(self, text: str) -> None:
        if text:
            await self._sink(text)


def answer_stream(sink: JobSink, request: SolveRequest, think: bool) -> AnswerStream | None:
    """The answer stream of the generate stage's single greedy request, or None when
    this job's answer is not streamed (not asked for, several samples, a refine stage,
    or a sink that streams nowhere)."""
    if not (sink.streams and request.stream and request.strategy.single_output):
        return None
    return AnswerStream(sink.on_delta, think)
