"""`training.rows`: every accepted dataset row form becomes the one form trl trains on,
and every refused row is an error naming its line and the accepted forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.rows import FORMS, MESSAGE_FORM, Method, RowError, load_examples


def turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


SYSTEM, USER, ASSISTANT = (
    turn("system", "Be brief."),
    turn("user", "2 + 2?"),
    turn("assistant", "4"),
)


def write(tmp_path: Path, *rows: Any) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    return path


def examples(tmp_path: Path, method: Method, *rows: Any) -> list[dict[str, Any]]:
    return load_examples(write(tmp_path, *rows), method)


# --- sft ---------------------------------------------------------------------------


def test_an_openai_messages_row_becomes_prompt_and_its_last_assistant_turn(
    tmp_path: Path,
) -> None:
    messages = [SYSTEM, USER, turn("assistant", "5"), turn("user", "Sure?"), ASSISTANT]
    [example] = examples(tmp_path, "sft", {"messages": messages})
    assert example == {"prompt": messages[:-1], "completion": [ASSISTANT]}


def test_a_tool_turn_may_come_before_the_completion(tmp_path: Path) -> None:
    messages = [USER, turn("assistant", "run 2 + 2"), turn("tool", "4"), ASSISTANT]
    [example] = examples(tmp_path, "sft", {"messages": messages})
    assert example["prompt"] == messages[:-1] and example["completion"] == [ASSISTANT]


def test_conversational_prompt_completion_rows_pass_unchanged_without_meta(
    tmp_path: Path,
) -> None:
    row = {"prompt": [SYSTEM, USER], "completion": [ASSISTANT], "meta": {"kind": "score"}}
    assert examples(tmp_path, "sft", row) == [{"prompt": [SYSTEM, USER], "completion": [ASSISTANT]}]


def test_a_dataset_of_strings_stays_plain_text(tmp_path: Path) -> None:
    rows = [{"prompt": "2 + 2 =", "completion": " 4"}, {"prompt": "3 + 3 =", "completion": " 6"}]
    assert examples(tmp_path, "sft", *rows) == rows


def test_one_conversational_row_makes_every_string_a_turn(tmp_path: Path) -> None:
    """trl judges a row conversational by one of its fields and Arrow wants one type per
    column, so the whole dataset takes the conversational form."""
    got = examples(
        tmp_path,
        "sft",
        {"prompt": "2 + 2?", "completion": "4"},
        {"messages": [USER, ASSISTANT]},
        {"prompt": [USER], "completion": "4"},
    )
    assert got == [{"prompt": [USER], "completion": [ASSISTANT]}] * 3


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    got = examples(tmp_path, "sft", "\n", {"messages": [USER, ASSISTANT]}, "  \n")
    assert got == [{"prompt": [USER], "completion": [ASSISTANT]}]


# --- dpo ---------------------------------------------------------------------------


def test_standard_preference_rows_stay_plain_text(tmp_path: Path) -> None:
    row = {"prompt": "2 + 2 =", "chosen": " 4", "rejected": " 5"}
    assert examples(tmp_path, "dpo", row) == [row]


def test_conversational_preference_rows_pass_unchanged(tmp_path: Path) -> None:
    row = {"prompt": [SYSTEM, USER], "chosen": [ASSISTANT], "rejected": [turn("assistant", "5")]}
    assert examples(tmp_path, "dpo", {**row, "meta": {}}) == [row]


def test_a_string_prompt_with_message_replies_becomes_a_user_turn(tmp_path: Path) -> None:
    got = examples(
        tmp_path,
        "dpo",
        {"prompt": "2 + 2?", "chosen": [ASSISTANT], "rejected": "5"},
        {"prompt": "2 + 2?", "chosen": "4", "rejected": "5"},
    )
    expected = {"prompt": [USER], "chosen": [ASSISTANT], "rejected": [turn("assistant", "5")]}
    assert got == [expected, expected]


# --- refused rows ------------------------------------------------------------------

REFUSED: list[tuple[Method, Any, str]] = [
    ("sft", {"messages": [USER, ASSISTANT, turn("user", "And 3 + 3?")]}, "ends with a user turn"),
    ("sft", {"messages": [SYSTEM, USER]}, "has no assistant turn"),
    ("sft", {"messages": [ASSISTANT]}, "no turn before its assistant turn"),
    ("sft", {"messages": []}, "has no assistant turn"),
    ("sft", {"messages": [turn("bot", "hi"), ASSISTANT]}, "`messages` turn 1 `role`"),
    ("sft", {"messages": [USER, {"role": "assistant", "content": None}]}, "turn 2 `content`"),
    ("sft", {"messages": [USER, {**ASSISTANT, "weight": 0}]}, "turn 2 `weight`"),
    ("sft", {"messages": [USER, ASSISTANT], "prompt": "2 + 2?"}, "both `messages` and"),
    ("sft", {"prompt": "2 + 2?"}, "has no completion"),
    ("sft", {"text": "2 + 2 = 4"}, "has no prompt, completion"),
    ("sft", {"prompt": [USER], "completion": [USER]}, "`completion`: the last turn is the user's"),
    ("sft", {"prompt": [], "completion": "4"}, "`prompt`: List should have at least 1 item"),
    ("sft", {"prompt": "2 + 2?", "completion": ""}, "`completion`: String should have at least"),
    ("sft", {"prompt": 4, "completion": "4"}, "`prompt`: Input should be a string or a list"),
    ("sft", [USER, ASSISTANT], "is a JSON list, not an object"),
    ("sft", "{not json\n", "is not JSON"),
    ("dpo", {"prompt": [], "completion": []}, "has no chosen, rejected"),
    ("dpo", {"messages": [USER, ASSISTANT]}, "has no prompt, chosen, rejected"),
    ("dpo", {"prompt": [USER], "chosen": [ASSISTANT], "rejected": [USER]}, "`rejected`: the last"),
    ("dpo", {"prompt": "2 + 2?", "chosen": {"text": "4"}, "rejected": "5"}, "`chosen`: Input"),
]


@pytest.mark.parametrize(("method", "row", "reason"), REFUSED)
def test_a_row_of_no_accepted_form_is_an_error_naming_its_line_and_the_forms(
    tmp_path: Path, method: Method, row: Any, reason: str
) -> None:
    good = (
        {"messages": [USER, ASSISTANT]}
        if method == "sft"
        else {"prompt": "2 + 2?", "chosen": "4", "rejected": "5"}
    )
    path = write(tmp_path, good, "\n", row, good)  # the refused row is line 3
    with pytest.raises(RowError) as refused:
        load_examples(path, method)
    message = str(refused.value)
    assert message.startswith(f"{path}:3 ")
    assert reason in message
    assert FORMS[method] in message and MESSAGE_FORM in message


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RowError, match="holds no examples"):
        examples(tmp_path, "sft", "\n")
