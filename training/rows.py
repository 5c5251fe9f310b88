"""The dataset rows `sciserve train` accepts, and the one form they are given for trl.

Accepted rows (trl's dataset formats, and OpenAI's fine-tuning rows):
- sft: `prompt` + `completion`, each a string or a list of messages (trl's standard and
  conversational prompt-completion); or `messages` (OpenAI fine-tuning, trl's
  conversational language modeling), which becomes prompt-completion: its last turn
  must be the assistant's and is the completion, the turns before it are the prompt.
  trl would otherwise train on every token of a `messages` row, and the loss stays on
  the completion only.
- dpo: `prompt` + `chosen` + `rejected`, each a string or a list of messages (trl's
  standard and conversational preference formats).
A message is `{"role": system|user|assistant|tool, "content": string}`. Other keys of a
row (the builders' `meta`) are ignored.

One form per dataset: trl tells a conversational row from one of its fields, whichever
it picks (`trl.data_utils.is_conversational`), and an Arrow column holds strings or
lists, not both. So once any field of any row is a list of messages, every string
becomes one turn (a prompt the user's, a completion, chosen or rejected the
assistant's); a dataset of strings only stays plain text (no chat template).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

Method = Literal["sft", "dpo"]
Role = Literal["system", "user", "assistant", "tool"]
Turns = list[dict[str, str]]
Example = dict[str, str | Turns]

FORMS: dict[Method, str] = {
    "sft": (
        '{"prompt": ..., "completion": ...} (each a string or a list of messages), or '
        '{"messages": [...]} whose last turn is the assistant\'s (the completion)'
    ),
    "dpo": '{"prompt": ..., "chosen": ..., "rejected": ...} (each a string or a list of messages)',
}
MESSAGE_FORM = 'a message is {"role": "system"|"user"|"assistant"|"tool", "content": "..."}'


class RowError(ValueError):
    """A dataset row that fits no accepted form; the message names the file and line."""


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Role
    content: str


def _ends_with_assistant(turns: list[Message]) -> list[Message]:
    if turns[-1].role != "assistant":
        raise ValueError(f"the last turn is the {turns[-1].role}'s, not the assistant's")
    return turns


def _text_or_turns(value: Any) -> str:
    return "text" if isinstance(value, str) else "turns"


NonEmpty = Annotated[str, Field(min_length=1)]
# A callable discriminator, so a wrong value is reported once, against the form it is
# closest to (a list, or anything not a string, as turns), not once per union member.
Messages = Annotated[list[Message], Field(min_length=1)]  # never empty: trl reads turn 0
Prompt = Annotated[
    Annotated[NonEmpty, Tag("text")] | Annotated[Messages, Tag("turns")],
    Discriminator(_text_or_turns),
]
Reply = Annotated[
    Annotated[NonEmpty, Tag("text")]
    | Annotated[Messages, AfterValidator(_ends_with_assistant), Tag("turns")],
    Discriminator(_text_or_turns),
]


class PromptCompletion(BaseModel):
    """sft: trl's prompt-completion row, standard or conversational."""

    model_config = ConfigDict(strict=True)

    prompt: Prompt
    completion: Reply


class Conversation(BaseModel):
    """sft: an OpenAI fine-tuning row; the last (assistant) turn is the completion."""

    model_config = ConfigDict(strict=True)

    messages: list[Message]

    @model_validator(mode="after")
    def _last_turn_is_the_assistants(self) -> Conversation:
        roles = [m.role for m in self.messages]
        if "assistant" not in roles:
            raise ValueError("`messages` has no assistant turn to train on")
        if roles[-1] != "assistant":
            raise ValueError(
                f"`messages` ends with a {roles[-1]} turn after its last assistant turn "
                "(the completion); nothing may follow it"
            )
        if len(roles) < 2:
            raise ValueError("`messages` has no turn before its assistant turn (the prompt)")
        return self

    def as_prompt_completion(self) -> PromptCompletion:
        return PromptCompletion(prompt=self.messages[:-1], completion=self.messages[-1:])


class Preference(BaseModel):
    """dpo: trl's preference row with an explicit prompt, standard or conversational."""

    model_config = ConfigDict(strict=True)

    prompt: Prompt
    chosen: Reply
    rejected: Reply


def _reason(error: ValidationError) -> str:
    """The validation errors as one clause: where in the row, and what is wrong."""
    errors = error.errors(include_url=False)
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if missing:
        return f"has no {', '.join(missing)}"
    parts = []
    for e in errors:
        where = []
        for step in e["loc"]:
            if isinstance(step, int):
                where.append(f"turn {step + 1}")
            elif step not in ("text", "turns"):  # the discriminator's tags
                where.append(f"`{step}`")
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "list_type" and e["loc"][1:] == ("turns",):  # neither str nor list
            message = "Input should be a string or a list of messages"
        parts.append(f"{' '.join(where)}: {message}" if where else message)
    return "; ".join(parts)


def parse_row(row: Any, method: Method) -> PromptCompletion | Preference:
    """One row in its accepted form; ValueError with the reason when it fits none."""
    if not isinstance(row, dict):
        raise ValueError(f"is a JSON {type(row).__name__}, not an object")
    try:
        if method == "dpo":
            return Preference.model_validate(row)
        if "messages" in row:
            if "prompt" in row or "completion" in row:
                raise ValueError("has both `messages` and `prompt`/`completion`")
            return Conversation.model_validate(row).as_prompt_completion()
        return PromptCompletion.model_validate(row)
    except ValidationError as error:
        raise ValueError(_reason(error)) from error


def _as_turns(value: str | list[Message], role: Role) -> Turns:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [m.model_dump() for m in value]


def to_examples(rows: list[PromptCompletion | Preference]) -> list[Example]:
    """The rows in one form trl accepts: all plain text, or all lists of messages."""
    fields: list[tuple[str, Role]] = [
        ("prompt", "user"),
        ("completion", "assistant"),
        ("chosen", "assistant"),
        ("rejected", "assistant"),
    ]
    conversational = any(
        not isinstance(getattr(row, name), str)
        for row in rows
        for name, _ in fields
        if name in type(row).model_fields
    )
    examples = []
    for row in rows:
        example: Example = {}
        for name, role in fields:
            if name in type(row).model_fields:
                value = getattr(row, name)
                example[name] = _as_turns(value, role) if conversational else value
        examples.append(example)
    return examples


def load_examples(path: Path, method: Method) -> list[Example]:
    """A dataset file's examples for `method`, in one form trl accepts; RowError names
    the first line that fits no accepted form."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(parse_row(json.loads(line), method))
        except ValueError as error:  # json.JSONDecodeError is one
            reason = f"is not JSON ({error})" if isinstance(error, json.JSONDecodeError) else error
            raise RowError(
                f"{path}:{number} {reason}. A row for `train {method}` is {FORMS[method]}; "
                f"{MESSAGE_FORM}."
            ) from error
    if not rows:
        raise RowError(f"{path} holds no examples.")
    return to_examples(rows)
