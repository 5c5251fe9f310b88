"""Reading model outputs: AWL function calls and TPO thought/response splits.

Pure functions on strings, so the branch a model output takes is testable without a
model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from workers.prompts import ANSWER_FUNCTION, RESPONSE_MARKER, THOUGHT_MARKER

_DECODER = json.JSONDecoder()


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
    """TPO: (thought, response, format_break).

    The response is everything after the last response marker ("Here is my
    response:", or "<R>" for the specific prompt). Without that marker the whole
    output is the response and the format break is reported: a broken output must
    never hide what the user should see, nor show what they should not as a thought.
    """
    marker = text.rfind(response_marker)
    if marker < 0:
        return None, text.strip(), True
    thought = text[:marker]
    start = thought.find(thought_marker) if thought_marker else -1
    if thought_marker and start >= 0:
        thought = thought[start + len(thought_marker) :]
    return thought.strip(), text[marker + len(response_marker) :].strip(), False
