"""The OpenAI-compatible API through the official `openai` SDK, against the real
embedded service (gateway, in-process queue, worker, vLLM on the tiny model) over
real HTTP: presets, sync and async clients, streaming, usage, errors, cancellation on
disconnect, and the OpenAPI spec. No mocks here: the thought-leak tests, which need a
model that writes a known thought, live in test_openai_scripted.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest
from prometheus_client import REGISTRY

from contract.presets import STRATEGY_PRESETS
from tests.conftest import Service

PROBLEM = "What is 15% of 80?"
PRESETS = ["direct", "vote5", "score", "art", "think", "adaptive"]
LONG = {"max_completion_tokens": 3000, "timeout_s": 600}


def _client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)


def _engine_completion_tokens() -> float:
    return REGISTRY.get_sample_value("sciserve_engine_tokens_total", {"kind": "completion"}) or 0.0


def _unfinished(service: Service) -> int:
    """vLLM's own count of requests it has not finished (running or waiting)."""
    return int(service.engine._llm.output_processor.get_num_unfinished_requests())


def _wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _base(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def test_models_list_the_base_and_every_preset(service: Service) -> None:
    client = _client(service)
    ids = [model.id for model in client.models.list()]
    base = ids[0]
    for preset in STRATEGY_PRESETS:  # the one list of presets, also `sciserve eval -s`'s
        assert f"sciserve-{preset}" in ids and f"{base}:{preset}" in ids
    assert set(PRESETS) | {"plan"} <= set(STRATEGY_PRESETS)
    assert base == str(service.settings.model).rsplit("/", 1)[-1]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_answers_through_the_sdk(service: Service, preset: str) -> None:
    client = _client(service)
    before = _engine_completion_tokens()
    completion = client.chat.completions.create(
        model=f"sciserve-{preset}",
        messages=[{"role": "user", "content": PROBLEM}],
        max_tokens=16,
    )
    counted = _engine_completion_tokens() - before
    [choice] = completion.choices
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == f"sciserve-{preset}"
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # Every engine call is billed: the usage is what the engine generated.
    assert usage.completion_tokens == counted > 0
    extension = completion.model_extra["sciserve"]  # type: ignore[index]
    stages = extension["stages"]
    assert usage.completion_tokens == sum(
        s["completion_tokens"] + s["thought_tokens"] for s in stages
    )
    assert usage.prompt_tokens == sum(s["prompt_tokens"] for s in stages)
    assert usage.completion_tokens_details.reasoning_tokens == sum(
        s["thought_tokens"] for s in stages
    )
    strategy = extension["strategy"]
    presets: dict[str, tuple[str, dict[str, Any]]] = {
        "direct": ("direct", {"tools": "never"}),
        "vote5": ("vote", {"samples": 5}),
        "score": ("selfcorrect", {"attempts": 2}),
        "art": ("art", {"art": True}),
        "think": ("think", {"think": True}),
        "adaptive": ("adaptive", {"tools": "auto"}),
    }
    expected = presets[preset]
    assert extension["strategy_name"] == expected[0]
    assert all(strategy[key] == value for key, value in expected[1].items())
    assert extension["timings"]["total_s"] > 0
    names = [s["stage"] for s in stages]
    if preset == "vote5":
        votes = extension["votes"]
        # Samples without a readable answer cast no vote.
        assert len(extension["sample_answers"]) == 5
        assert sum(votes["distribution"].values()) <= 5 and 0 <= votes["agreement"] <= 1
        assert names == ["generate", "select"]
    if preset == "score":
        assert names == ["generate", "selfcorrect"] and extension["refine"][0]["round"] == 1
    if preset == "art":
        assert extension["refine"][0]["stage"] == "art_ask"
        assert extension["refine"][0]["decisions"][0] in ("refine", "skip")


def test_vote5_bills_every_sample(service: Service) -> None:
    """samples:5 is one request per sample (the greedy one first): the completion tokens
    are the sum over the samples that ran, each at most max_tokens; a settled vote may
    stop before all five."""
    client = _client(service)
    completion = client.chat.completions.create(
        model="sciserve-vote5", messages=[{"role": "user", "content": PROBLEM}], max_tokens=16
    )
    direct = client.chat.completions.create(
        model="sciserve-direct", messages=[{"role": "user", "content": PROBLEM}], max_tokens=16
    )
    assert completion.usage is not None and direct.usage is not None
    generate = completion.model_extra["sciserve"]["stages"][0]  # type: ignore[index]
    calls = generate["engine_calls"]
    assert 3 <= calls <= 5  # a majority of five decides at the earliest
    assert calls <= completion.usage.completion_tokens <= calls * 16
    # The samples share one prompt: one request each, each billed its prompt.
    assert completion.usage.prompt_tokens == calls * direct.usage.prompt_tokens
    assert completion.usage.completion_tokens == generate["completion_tokens"]


def test_base_preset_form_and_strategy_in_extra_body(service: Service) -> None:
    client = _client(service)
    base = _base(client)
    completion = client.chat.completions.create(
        model=f"{base}:direct",
        messages=[{"role": "user", "content": PROBLEM}],
        max_tokens=8,
        extra_body={"strategy": {"samples": 3}, "reference": "12", "answer_type": "number"},
    )
    extension = completion.model_extra["sciserve"]  # type: ignore[index]
    assert extension["strategy"]["samples"] == 3 and extension["strategy"]["tools"] == "never"
    assert extension["correct"] in (True, False)
    assert len(extension["sample_answers"]) == 3 and extension["votes"] is not None


def test_system_and_history_reach_the_prompt(service: Service) -> None:
    """More prompt tokens with a system message and earlier turns than without."""
    client = _client(service)
    bare = client.chat.completions.create(
        model="sciserve-direct", messages=[{"role": "user", "content": PROBLEM}], max_tokens=4
    )
    full = client.chat.completions.create(
        model="sciserve-direct",
        messages=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": PROBLEM},
        ],
        max_tokens=4,
    )
    assert bare.usage is not None and full.usage is not None
    assert full.usage.prompt_tokens > bare.usage.prompt_tokens + 10


def test_streamed_direct_answer_is_the_message_token_by_token(service: Service) -> None:
    client = _client(service)
    messages: Any = [{"role": "user", "content": PROBLEM}]
    plain = client.chat.completions.create(
        model="sciserve-direct", messages=messages, max_tokens=24
    )
    chunks = list(
        client.chat.completions.create(
            model="sciserve-direct",
            messages=messages,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(content) == plain.choices[0].message.content
    # Real streaming: the answer arrives in many pieces, not one chunk at the end.
    assert len(content) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].model_extra["sciserve"]["event"] == "claimed"  # type: ignore[index]
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == plain.choices[0].finish_reason
    assert finish[0].model_extra["sciserve"]["answer"] == plain.model_extra["sciserve"]["answer"]  # type: ignore[index]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]
    # The SDK's own accumulator reassembles the same message (its parse step refuses
    # a `length` finish, and hands over the completion with that error).
    with client.chat.completions.stream(
        model="sciserve-direct", messages=messages, max_tokens=24
    ) as stream:
        try:
            final: Any = stream.get_final_completion()
        except openai.LengthFinishReasonError as exc:
            final = exc.completion
    assert final.choices[0].message.content == plain.choices[0].message.content


def test_streamed_vote_sends_progress_then_the_selected_answer(service: Service) -> None:
    client = _client(service)
    chunks = list(
        client.chat.completions.create(
            model="sciserve-vote5",
            messages=[{"role": "user", "content": PROBLEM}],
            max_tokens=16,
            stream=True,
        )
    )
    stages = [
        c.model_extra["sciserve"]["stage"]  # type: ignore[index]
        for c in chunks
        if not c.choices and (c.model_extra or {}).get("sciserve", {}).get("event") == "stage"
    ]
    assert stages == ["generate", "select"]
    # A stage's detail and engine calls are the trace page's, never the chat stream's.
    progress = [(c.model_extra or {}).get("sciserve", {}) for c in chunks if not c.choices]
    assert not any("detail" in p or "calls" in p for p in progress)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    job_id = chunks[0].id.removeprefix("chatcmpl-")
    with service.client() as http:
        job = http.get(f"/jobs/{job_id}").json()
    assert content == job["result"]["answer_text"].strip()
    assert job["result"]["usage"]["completion_tokens"] > 0


def test_async_client_and_async_stream(service: Service) -> None:
    async def run() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=f"{service.url}/v1", api_key="unused")
        messages: Any = [{"role": "user", "content": PROBLEM}]
        plain = await client.chat.completions.create(
            model="sciserve-direct", messages=messages, max_tokens=12
        )
        stream = await client.chat.completions.create(
            model="sciserve-direct", messages=messages, max_tokens=12, stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return plain.choices[0].message.content or "", "".join(pieces)

    plain, streamed = asyncio.run(run())
    assert plain == streamed


def test_disconnect_mid_stream_cancels_the_job(service: Service) -> None:
    """16 samples of up to 3000 tokens: still generating when the client leaves after
    the first chunk (the job's claim)."""
    client = _client(service)
    stream = client.chat.completions.create(
        model="sciserve-direct",
        messages=[{"role": "user", "content": "Count slowly from one to one thousand, in words."}],
        stream=True,
        extra_body={**LONG, "strategy": {"samples": 16}},
    )
    first = next(iter(stream))
    job_id = first.id.removeprefix("chatcmpl-")
    _wait_until(lambda: _unfinished(service) > 0, 60, "the job to reach the engine")
    stream.close()
    _wait_until(lambda: _unfinished(service) == 0, 10, "vLLM to abort the job's request")
    with service.client() as http:
        _wait_until(
            lambda: http.get(f"/jobs/{job_id}").json()["status"] == "failed", 10, "the job to end"
        )
        job = http.get(f"/jobs/{job_id}").json()
    assert job["error_code"] == "cancelled"


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def test_errors_use_openai_bodies(service: Service) -> None:
    client = _client(service)
    user = [{"role": "user", "content": PROBLEM}]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="sciserve-nope", messages=user)  # type: ignore[arg-type]
    assert "sciserve-nope" in str(missing.value) and "vote5" in str(missing.value)
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(
            model="sciserve-direct",
            messages=user,  # type: ignore[arg-type]
            extra_body={"strateggy": {"samples": 2}},
        )
    assert "strateggy" in str(unknown.value)
    with service.client() as http:
        cases: dict[str, tuple[dict[str, Any], str]] = {
            "bad strategy": ({"strategy": {"samples": 100}}, "strategy.samples"),
            "not the user's turn": (
                {"messages": [*user, {"role": "assistant", "content": "12"}]},
                "messages.1.role",
            ),
            "no messages": ({"messages": []}, "messages"),
            "n > 1": ({"n": 2}, "n"),
            "stop": ({"stop": ["\n"]}, "stop"),
            "bad server tool": ({"tools": ["astrology"]}, "tools"),
            "client function not in tools": (
                {
                    "tools": [{"type": "function", "function": {"name": "f"}}],
                    "tool_choice": {"type": "function", "function": {"name": "g"}},
                },
                "tool_choice",
            ),
            "tool_choice required": ({"tool_choice": "required"}, "tool_choice"),
        }
        for name, (extra, param) in cases.items():
            body = {"model": "sciserve-direct", "messages": user, **extra}
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code == 400, (name, response.text)
            error = _error(response)
            assert error["type"] == "invalid_request_error", name
            assert (error["param"] or "").startswith(param), (name, error)
        model = http.post("/v1/chat/completions", json={"model": "x", "messages": user})
        assert model.status_code == 404 and _error(model)["code"] == "model_not_found"
        reveal = http.post(
            "/v1/chat/completions",
            json={"model": "sciserve-think", "messages": user, "reveal_thoughts": True},
        )
        assert reveal.status_code == 403 and _error(reveal)["type"] == "permission_error"


def test_openapi_spec_has_the_v1_routes_with_media_types(service: Service) -> None:
    with service.client() as http:
        spec = http.get("/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    content = chat["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/event-stream"}
    assert content["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    chunk = content["text/event-stream"]["schema"]
    assert "choices" in chunk["properties"] and "$defs" not in json.dumps(chunk)
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ChatCompletionRequest"
    )
    assert "400" in chat["responses"] and "/v1/models" in spec["paths"]
