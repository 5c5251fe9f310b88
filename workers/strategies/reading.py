"""Reading model outputs: AWL function calls and TPO thought/response splits.

Pure functions on strings, so the branch a model output takes is testable without a
model. `hide_thought` is the one rule for what of a think-mode output a user may see:
the job's result, its answer stream and its trace record all follow it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contract.answers import final_answer_span, last_boxed
from workers.prompts import (
    ANSWER_FUNCTION,
    RESPONSE_MARKER,
    THOUGHT_MARKER,
    ThinkPrompt,
    think_wrap,
)

_DECODER = json.JSONDecoder()
AnswerReader = Callable[[str], str | None]  # the job's extractor (SolveContext.extract)


@dataclass(frozen=True)
class FunctionCall:
    """`{"name": ..., "parameters": {...}}`, AWL's call format."""

    name: str
    parameters: dict[str, Any]

    @property
    def is_answer(self) -> bool:
        return self.name == ANSWER_FUNCTION


def parse_function_call(text: str) -> FunctionCall | None:
    """The first JSON object in `text` that is a call.

    Models wrap calls in prose, code fences or `<tool_call>` tags, so every `{` is
    tried as the start of a JSON value. `arguments` is accepted for `parameters`
    (OpenAI's key), and a JSON string of parameters is decoded. Failing that, AWL's own
    parser is tried: the first line with `'` turned into `"` (its worked examples
    write Python-style dicts, so adapters trained on them do too).
    """
    call = _first_call(text)
    if call is None and "'" in text:
        first_line = text.strip().split("\n")[0].replace("<|python_tag|>", "")
        call = _first_call(first_line.split(";")[0].replace("'", '"'))
    return call


def _first_call(text: str) -> FunctionCall | None:
    for match in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            continue
        parameters = value.get("parameters", value.get("arguments", {}))
        if isinstance(parameters, str):
            try:
                parameters = json.loads(parameters)
            except ValueError:
                continue
        if isinstance(parameters, dict):
            return FunctionCall(value["name"], parameters)
    return None


def answer_call_text(call: FunctionCall) -> str | None:
    """An `answer_question` call rendered as a solution whose last line holds the
    answer, so the usual extractor reads it; None for any other call."""
    if not call.is_answer:
        return None
    process = str(call.parameters.get("sloving_process") or call.parameters.get("thought") or "")
    answer = str(call.parameters.get("answer", "")).strip()
    return f"{process}\n\nThe answer is {answer}".strip()


def split_thought(
    text: str, response_marker: str = RESPONSE_MARKER, thought_marker: str | None = THOUGHT_MARKER
) -> tuple[str | None, str, bool]:
    """TPO's marker split alone: (thought, response, format_break).

    The response is everything after the last response marker ("Here is my
    response:", or "<R>" for the specific prompt). Without that marker this returns
    (None, the whole output, True); what a user may see of such an output is
    `hide_thought`'s to decide, never this tuple's.
    """
    marker = text.rfind(response_marker)
    if marker < 0:
        return None, text.strip(), True
    thought = text[:marker]
    start = thought.find(thought_marker) if thought_marker else -1
    if thought_marker and start >= 0:
        thought = thought[start + len(thought_marker) :]
    return thought.strip(), text[marker + len(response_marker) :].strip(), False


def format_broke(text: str, response_marker: str) -> bool:
    """Whether a TPO output lacks its response marker."""
    return response_marker not in text


@dataclass(frozen=True)
class ThoughtSplit:
    """A think-mode output as `hide_thought` cut it."""

    visible: str  # what the user sees: the response, or a broken output's answer alone
    thought: str | None  # the hidden part as `thoughts` reveals it; None when none is
    format_break: bool  # the prompt asked for TPO's format and the marker is missing
    hidden: str  # the output text whose tokens are the thought's (see `thought_tokens`)

    def thought_tokens(self, count: Callable[[str], int], generated: int | None = None) -> int:
        """Tokens that stay hidden, counted with `count` (the engine's tokenizer): the
        output up to the end of its response marker; after a format break every token
        but the visible answer's. `generated` is the engine's own count of the output,
        when known: a break's tokens are then counted from it, and the hidden ones never
        exceed it (a decoded output can encode to more tokens than were generated, as
        the random-weight test model's do)."""
        if not self.format_break:
            hidden = count(self.hidden) if self.hidden else 0
        else:
            total = count(self.hidden) if generated is None else generated
            hidden = total - (count(self.visible) if self.visible else 0)
        hidden = max(0, hidden)
        return hidden if generated is None else min(hidden, generated)


def hide_thought(
    text: str,
    markers: tuple[str | None, str],
    read_answer: AnswerReader,
    *,
    format_asked: bool = True,
) -> ThoughtSplit:
    """What of a think-mode (TPO) output the user may see. The job's result
    (`SolveContext.read`), its answer stream (workers/streaming.py) and its trace
    record (workers/traces.py) all follow this one rule.

    - With the response marker, the response after the LAST marker is visible and
      everything up to the marker's end is hidden: a thought that quotes the marker
      (small models echo the prompt) stays hidden.
    - Without it, when the prompt asked for the format (`markers` are `think_markers`'
      pair), the format broke, and the output is never served as the response: only
      the final answer it states (`stated_answer`) is visible, alone, and everything
      else is hidden; with no readable answer nothing is visible and all is hidden. A
      0.5B model wrote "Here is my thought process: 1. …" with no marker twice in a
      row, and the whole thought was served as the answer.
    - Without it in a reply to a prompt that did not ask for the format (a refine
      turn, a tool result), the whole output is the response.

    A later marker hides all before it, so no part of an unfinished output is sure to
    be visible: a stream holds think outputs back until this has read them whole.
    """
    thought_marker, response_marker = markers
    thought, response, broke = split_thought(text, response_marker, thought_marker)
    if not broke:
        hidden = text[: text.rfind(response_marker) + len(response_marker)]
        return ThoughtSplit(response, thought, False, hidden)
    if not format_asked:
        return ThoughtSplit(response, None, False, "")
    start = text.find(thought_marker) if thought_marker else -1
    whole = text[start + len(thought_marker) :] if thought_marker and start >= 0 else text
    visible = stated_answer(text, read_answer) or ""
    return ThoughtSplit(visible, whole.strip() or None, True, text)


def stated_answer(text: str, read_answer: AnswerReader) -> str | None:
    """The final answer an output states, as `read_answer` normalizes it, or None.

    A function call is the response of AWL's tool prompt: `answer_question` states its
    `answer`; a tool call is kept whole (as JSON), for the tool loop to run. Otherwise
    the answer is in the last `\\boxed{}` or on the last "the answer is" line. The
    last line alone states nothing: in a thought it is only the thought's last line.
    """
    call = parse_function_call(text)
    if call is not None and call.is_answer:
        given = str(call.parameters.get("answer") or "").strip()
        return read_answer(given) if given else None
    if call is not None:
        return json.dumps({"name": call.name, "parameters": call.parameters}, ensure_ascii=False)
    span = final_answer_span(text)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # final_answer_span falls back to the last line when no answer is stated.
    if last_boxed(text) is None and (not lines or span == lines[-1]):
        return None
    return read_answer(span)


def asks_thought_format(messages: Sequence[Mapping[str, Any]] | None, variant: ThinkPrompt) -> bool:
    """Whether a conversation ends in TPO's thought prompt (`think_wrap`), so its reply
    was asked for the format; a refine instruction or a tool result was not."""
    if not messages:
        return False
    last = messages[-1]
    head = think_wrap("", variant)  # the prompt up to the user's query
    return last.get("role") == "user" and str(last.get("content") or "").startswith(head)
