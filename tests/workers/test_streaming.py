"""What the worker streams of an answer is always a prefix of the answer the job's
result carries: TPO's thought never, whitespace the result strips never. A think
output is held back until `hide_thought` has read it whole, because a later response
marker would hide what came before it."""

from __future__ import annotations

import pytest

from contract.answers import extract_answer
from workers.prompts import RESPONSE_MARKER, THOUGHT_MARKER, think_markers
from workers.strategies.reading import hide_thought
from workers.streaming import VisibleText

OUTPUT = f"{THOUGHT_MARKER} secret plan. {RESPONSE_MARKER}\n  It is 4.  \\boxed{{4}}\n\n"
# The thought quotes the marker (as small models echo the prompt): a stream that opened
# at the first marker would have sent "secret plan" before the real response.
ECHOED = (
    f"{THOUGHT_MARKER} I write my response after “{RESPONSE_MARKER}”, so: secret plan. "
    f"{RESPONSE_MARKER} It is 4. \\boxed{{4}}"
)


def _read(text: str) -> str | None:
    return extract_answer(text, "number")


def _stream(output: str, size: int) -> list[str]:
    """The pieces a think stream releases for `output` in pieces of `size`, then at
    `settle` with the answer text the rule gives."""
    visible = VisibleText(held=True)
    released = [visible.feed(output[i : i + size]) for i in range(0, len(output), size)]
    answer = hide_thought(output, think_markers("generic"), _read).visible
    return [*released, visible.settle(answer)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50, 1000])
@pytest.mark.parametrize("output", [OUTPUT, ECHOED])
def test_think_pieces_release_only_the_response(output: str, size: int) -> None:
    released = _stream(output, size)
    assert "".join(released) == hide_thought(output, think_markers("generic"), _read).visible
    assert "".join(released) in ("It is 4.  \\boxed{4}", "It is 4. \\boxed{4}")
    assert all("secret" not in piece and "Here is" not in piece for piece in released)


def test_a_think_output_is_held_until_it_is_settled() -> None:
    visible = VisibleText(held=True)
    assert "".join(visible.feed(piece) for piece in [OUTPUT[:60], OUTPUT[60:]]) == ""


def test_without_the_marker_only_the_stated_answer_is_released() -> None:
    broken = f"{THOUGHT_MARKER} secret plan: 3 + 1 makes 4.\nSo the answer is \\boxed{{4}}."
    assert _stream(broken, 5) == [""] * ((len(broken) + 4) // 5) + ["4"]
    unanswered = f"{THOUGHT_MARKER} secret plan, still thinking"
    assert "".join(_stream(unanswered, 3)) == ""


@pytest.mark.parametrize("size", [1, 4])
def test_direct_text_is_released_stripped(size: int) -> None:
    raw = "\n  The answer is \\boxed{12}.  \n"
    visible = VisibleText()
    text = "".join(visible.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    assert text == raw.strip()
    assert visible.settle(raw) == ""  # nothing left: the stream already sent it all


def test_settle_sends_nothing_that_does_not_continue_the_stream() -> None:
    visible = VisibleText()
    assert visible.feed('{"name": ') == '{"name":'
    assert visible.settle("A rendered answer_question call") == ""
    assert RESPONSE_MARKER not in visible.released
