"""What the worker streams of an answer is always a prefix of the answer the job's
result carries: TPO's thought never, whitespace the result strips never."""

from __future__ import annotations

import pytest

from workers.prompts import RESPONSE_MARKER, THOUGHT_MARKER
from workers.strategies.reading import split_thought
from workers.streaming import VisibleText

OUTPUT = f"{THOUGHT_MARKER} secret plan. {RESPONSE_MARKER}\n  It is 4.  \\boxed{{4}}\n\n"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50, 1000])
def test_think_pieces_release_only_the_response(size: int) -> None:
    visible = VisibleText(RESPONSE_MARKER)
    released = [visible.feed(OUTPUT[i : i + size]) for i in range(0, len(OUTPUT), size)]
    text = "".join(released)
    assert text == split_thought(OUTPUT)[1] == "It is 4.  \\boxed{4}"
    assert all("secret" not in piece and "Here is" not in piece for piece in released)


def test_without_the_marker_nothing_is_released() -> None:
    visible = VisibleText(RESPONSE_MARKER)
    assert "".join(visible.feed(piece) for piece in ["secret ", "plan ", "\\boxed{4}"]) == ""


@pytest.mark.parametrize("size", [1, 4])
def test_direct_text_is_released_stripped(size: int) -> None:
    raw = "\n  The answer is \\boxed{12}.  \n"
    visible = VisibleText()
    text = "".join(visible.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    assert text == raw.strip()
