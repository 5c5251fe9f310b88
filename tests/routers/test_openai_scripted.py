"""The OpenAI-compatible API where a test needs a known model output: hidden thoughts
never reach `content` (streamed or not), they come as `reasoning` only when revealed,
and the system message and history reach the policy's prompt.

The engine is `StreamingScriptedEngine`: tests/doubles.py's `ScriptedEngine` (fixed
strings by a rule on the request) that also streams each one-sample output to the
request's text callback in small pieces, as the vLLM engine does with its deltas. A
random-weight model cannot be made to write a thought whose text is known. The SDK,
gateway, queue, worker, pipeline and SSE are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import openai
import pytest

from entrypoints.embedded import EmbeddedServer, free_port
from tests.conftest import tiny_settings
from tests.doubles import ScriptedEngine
from workers.engines.base import Completion, GenerationRequest
from workers.models.tiny import TinyModel

MARKER = "ZEBRA-SECRET-THOUGHT-7731"
THINKING = (
    f"Here is my thought process: {MARKER} is what I think. Here is my response:  "
    "It is four.   \\boxed{4}\n"
)
RULES = [("", THINKING)]


class StreamingScriptedEngine(ScriptedEngine):
    """Streams each one-sample output to `on_text` in 5-character pieces."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = await super().generate(requests)
        for request, completion in zip(requests, completions, strict=True):
            if request.on_text is not None and request.n == 1:
                text = completion.texts[0]
                for start in range(0, len(text), 5):
                    await request.on_text(text[start : start + 5])
        return completions


@pytest.fixture(scope="module")
def scripted(tiny_model: TinyModel) -> Iterator[EmbeddedServer]:
    """Anonymous callers may reveal thoughts here (they must still ask for it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
    settings = tiny_settings(
        tiny_model,
        port=free_port(),
        mount_tools=False,
        anonymous_scopes=["solve", "reveal_thoughts"],
    )
    engine = StreamingScriptedEngine(tokenizer, RULES)
    with EmbeddedServer(settings, ready_timeout_s=120, engine=engine) as server:
        yield server


def _client(server: EmbeddedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


USER: Any = [{"role": "user", "content": "What is 2 + 2?"}]


def test_think_never_leaks_into_content(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    completion = client.chat.completions.create(model="sciserve-think", messages=USER)
    message = completion.choices[0].message
    assert message.content == "It is four.   \\boxed{4}"
    assert MARKER not in completion.model_dump_json()
    assert "Here is my" not in completion.model_dump_json()
    assert message.model_extra.get("reasoning") is None  # type: ignore[union-attr]
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    reasoning = usage.completion_tokens_details.reasoning_tokens or 0
    assert 0 < reasoning < usage.completion_tokens


def test_streamed_think_sends_only_the_response(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    with client.chat.completions.with_streaming_response.create(
        model="sciserve-think", messages=USER, stream=True
    ) as response:
        raw = response.read().decode()
    assert MARKER not in raw and "Here is my" not in raw
    chunks = list(
        client.chat.completions.create(model="sciserve-think", messages=USER, stream=True)
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    # Held back until the whole output is read (a later marker would hide what came
    # before it: workers/strategies/reading.py hide_thought), then the response alone.
    assert pieces == ["It is four.   \\boxed{4}"]


def test_revealed_thoughts_come_as_reasoning(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    completion = client.chat.completions.create(
        model="sciserve-think", messages=USER, extra_body={"reveal_thoughts": True}
    )
    message = completion.choices[0].message
    assert MARKER in message.model_extra["reasoning"]  # type: ignore[index]
    assert MARKER not in (message.content or "")
    chunks = list(
        client.chat.completions.create(
            model="sciserve-think",
            messages=USER,
            stream=True,
            extra_body={"reveal_thoughts": True},
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert MARKER in reasoning and MARKER not in content


def test_system_message_and_history_reach_the_policy(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    client.chat.completions.create(
        model="sciserve-score",
        messages=[
            {"role": "system", "content": "Answer like a pirate."},
            {"role": "user", "content": "What is 1 + 1?"},
            {"role": "assistant", "content": "Arr, 2."},
            {"role": "user", "content": "And 2 + 2?"},
        ],
    )
    engine: StreamingScriptedEngine = scripted.engine
    generate, correct = engine.calls[-2:]
    for call in (generate, correct):  # SCoRe's second attempt continues the conversation
        assert call.messages is not None
        roles = [m["role"] for m in call.messages]
        assert roles[:4] == ["system", "user", "assistant", "user"]
        assert call.messages[0]["content"] == "Answer like a pirate."
        assert call.messages[2]["content"] == "Arr, 2."
        assert "And 2 + 2?" in call.messages[3]["content"]


def test_seed_replays_a_votes_samples(scripted: EmbeddedServer) -> None:
    """The SDK's `seed` reaches the vote: sample i draws with seed + i, one request each."""
    client = _client(scripted)
    engine: StreamingScriptedEngine = scripted.engine
    before = len(engine.calls)
    client.chat.completions.create(model="sciserve-vote5", messages=USER, seed=4242)
    calls = engine.calls[before:]
    assert [call.sampling.seed for call in calls] == [None, 4243, 4244, 4245, 4246][: len(calls)]
    assert calls[0].sampling.temperature == 0 and len(calls) >= 3
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="sciserve-vote5", messages=USER, seed=-1)


def test_budget_tokens_in_extra_body_reaches_the_job(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="sciserve-vote5",
            messages=USER,
            max_tokens=64,
            extra_body={"budget_tokens": 10},
        )
    assert "budget_tokens=10 cannot fit one answer" in str(refused.value)
