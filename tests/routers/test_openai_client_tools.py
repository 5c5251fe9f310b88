"""Client-side function calling through the official `openai` SDK (sync, async and
streaming), against the real embedded service (gateway, in-process queue, worker,
vLLM on the tiny model with its structured outputs) over real HTTP.

The tiny model's weights are random, so a call is forced with `tool_choice` named or
`required` (vLLM's structured outputs); the schemas use enums so the forced JSON is
short and the greedy output is the same on every run.

Double: the `auto` tests, which need a model that writes a known `<tool_call>` block,
run on tests/doubles.py's `ScriptedEngine` (fixed outputs by a rule on the last turn;
no structured outputs, so they also cover an engine that cannot force a call). The
SDK, gateway, queue, worker, pipeline and SSE are the real ones there too."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client import REGISTRY

from app.openai.stream import tool_call_deltas
from app.openai.translate import to_solve_request
from contract.openai import ChatCompletionRequest
from contract.schemas import ChatTurn, ClientFunction, ClientToolCall, NamedClientFunction
from contract.settings import Settings
from entrypoints.embedded import EmbeddedServer, free_port
from tests.conftest import Service, tiny_settings
from tests.doubles import ScriptedEngine
from workers.models.tiny import TinyModel
from workers.strategies.client_tools import call_schema, read_calls, turn_message

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}
USER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
NAMED: Any = {"type": "function", "function": {"name": "get_weather"}}
MODEL = "sciserve-direct"


def _client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)


def _calls_metric(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("sciserve_client_tool_calls_total", {"outcome": outcome}) or 0.0
    )


def _weather_arguments(arguments: str) -> dict[str, Any]:
    value = json.loads(arguments)
    assert isinstance(value, dict) and set(value) == {"city", "unit"}, value
    assert value["city"] in ("Paris", "Oslo", "Lima") and value["unit"] in ("C", "F")
    return value


def test_named_tool_choice_returns_a_valid_call(service: Service) -> None:
    before = _calls_metric("called")
    completion = _client(service).chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER, TIME], tool_choice=NAMED, max_tokens=64
    )
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    _weather_arguments(call.function.arguments)  # type: ignore[union-attr]
    extension = completion.model_extra["sciserve"]  # type: ignore[index]
    assert extension["client_tool_calls"] == "called" and extension["tool_calls"] == []
    assert _calls_metric("called") == before + 1
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_required_calls_one_of_the_functions(service: Service) -> None:
    completion = _client(service).chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=96,
    )
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls", choice.message.content
    [call] = choice.message.tool_calls or []
    name, arguments = call.function.name, json.loads(call.function.arguments)  # type: ignore[union-attr]
    if name == "get_weather":
        _weather_arguments(call.function.arguments)  # type: ignore[union-attr]
    else:
        assert name == "get_time" and arguments["zone"] in ("UTC", "CET")


def test_stream_deltas_reassemble_to_the_non_streamed_call(service: Service) -> None:
    """The raw chunks are OpenAI's tool-call deltas, and the SDK's own accumulator
    rebuilds exactly the call the non-streamed request returns (greedy: the same)."""
    client = _client(service)
    kwargs: Any = {
        "model": MODEL,
        "messages": USER,
        "tools": [WEATHER, TIME],
        "tool_choice": NAMED,
        "max_tokens": 64,
    }
    plain = client.chat.completions.create(**kwargs)
    [expected] = plain.choices[0].message.tool_calls or []
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    deltas = [
        call
        for chunk in chunks
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    first, *rest = deltas
    assert first.index == 0 and first.id and first.type == "function"
    assert first.function is not None and first.function.name == "get_weather"
    assert rest and all(d.index == 0 and d.id is None and d.function for d in rest)
    joined = "".join(d.function.arguments or "" for d in rest)  # type: ignore[union-attr]
    assert joined == expected.function.arguments  # type: ignore[union-attr]
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]
    with client.chat.completions.stream(**kwargs) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == expected.function.arguments  # type: ignore[union-attr]
    _weather_arguments(call.function.arguments)  # type: ignore[union-attr]


def test_async_client_and_async_stream_accumulator(service: Service) -> None:
    async def run() -> tuple[Any, Any]:
        client = openai.AsyncOpenAI(base_url=f"{service.url}/v1", api_key="unused")
        kwargs: Any = {
            "model": MODEL,
            "messages": USER,
            "tools": [WEATHER],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "max_tokens": 96,
        }
        plain = await client.chat.completions.create(**kwargs)
        async with client.chat.completions.stream(**kwargs) as stream:
            final = await stream.get_final_completion()
        await client.close()
        return plain, final

    plain, final = asyncio.run(run())
    for completion in (plain, final):
        assert completion.choices[0].finish_reason == "tool_calls"
    assert [c.function.arguments for c in final.choices[0].message.tool_calls] == [
        c.function.arguments for c in plain.choices[0].message.tool_calls
    ]
    for call in plain.choices[0].message.tool_calls:
        assert call.function.name == "get_weather"
        _weather_arguments(call.function.arguments)


def test_a_tool_loop_continues_from_the_results(service: Service) -> None:
    """The client sends the call back with its result: accepted, and the result is in
    the prompt (more prompt tokens than the call alone)."""
    client = _client(service)
    first = client.chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER], tool_choice=NAMED, max_tokens=64
    )
    [call] = first.choices[0].message.tool_calls or []
    turn: Any = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},  # type: ignore[union-attr]
            }
        ],
    }
    result: Any = {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}
    before = _calls_metric("hidden")
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[*USER, turn, result],
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=8,
    )
    [choice] = answer.choices
    assert choice.finish_reason in ("stop", "length") and not choice.message.tool_calls
    assert isinstance(choice.message.content, str)
    assert _calls_metric("hidden") == before + 1
    assert answer.model_extra["sciserve"]["client_tool_calls"] == "hidden"  # type: ignore[index]
    richer: Any = [*USER, turn, {**result, "content": '{"temperature": 21, "sky": "clear"}'}]
    longer = client.chat.completions.create(
        model=MODEL,
        messages=richer,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=8,
    )
    assert longer.usage.prompt_tokens > answer.usage.prompt_tokens  # type: ignore[union-attr]
    # The same loop on earlier turns: calls and results before the last user message.
    again = client.chat.completions.create(
        model=MODEL,
        messages=[*USER, turn, result, {"role": "user", "content": "And in Oslo?"}],
        tools=[WEATHER],
        tool_choice=NAMED,
        max_tokens=64,
    )
    assert again.choices[0].finish_reason == "tool_calls"


def test_auto_lets_the_model_decide(service: Service) -> None:
    completion = _client(service).chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER], tool_choice="auto", max_tokens=16
    )
    [choice] = completion.choices
    outcome = completion.model_extra["sciserve"]["client_tool_calls"]  # type: ignore[index]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls" and outcome == "called"
        for call in choice.message.tool_calls:
            _weather_arguments(call.function.arguments)  # type: ignore[union-attr]
    else:
        assert choice.finish_reason in ("stop", "length") and outcome == "answered"


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["type"] == "invalid_request_error"
    return error


def test_refusals_name_the_field(service: Service) -> None:
    client = _client(service)
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_wether"}},
        )
    assert "get_wether" in str(unknown.value) and "get_weather" in str(unknown.value)
    assert unknown.value.param == "tool_choice"
    call: Any = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "required without functions": ({"tool_choice": "required"}, "tool_choice"),
        "votes with functions": ({"model": "sciserve-vote5", "tools": [WEATHER]}, "tools"),
        "duplicate functions": ({"tools": [WEATHER, WEATHER]}, "tools"),
        "bad function name": (
            {"tools": [{"type": "function", "function": {"name": "no spaces"}}]},
            "tools",
        ),
        "a call without its result": (
            {"messages": [*USER, {"role": "assistant", "tool_calls": [call]}]},
            "messages.1.role",
        ),
        "a user turn's text after the calls": (
            {"messages": [*USER, {"role": "assistant", "content": "hm"}]},
            "messages.1.role",
        ),
    }
    with service.client() as http:
        for name, (extra, param) in cases.items():
            body = {"model": MODEL, "messages": USER, **extra}
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code == 400, (name, response.text)
            error = _error(response)
            assert (error["param"] or "").startswith(param), (name, error)


# --- the pure parts, no engine ----------------------------------------------------------


def test_read_calls_takes_the_formats_models_write() -> None:
    names = {"get_weather", "get_time"}
    qwen = (
        "Let me look.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>'
    )
    content, calls = read_calls(qwen, names)
    assert content == "Let me look."
    assert [(c.name, c.parameters) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}),
        ("get_time", {"zone": "CET"}),
    ]
    llama = '{"name": "get_time", "parameters": {"zone": "UTC"}}'
    assert read_calls(llama, names)[1][0].parameters == {"zone": "UTC"}
    openai_style = '{"name": "get_time", "arguments": "{\\"zone\\": \\"UTC\\"}"}'
    assert read_calls(openai_style, names)[1][0].parameters == {"zone": "UTC"}
    # A call of a function the client did not send is text, not a call.
    unknown = '{"name": "answer_question", "parameters": {"answer": "12"}}'
    assert read_calls(unknown, names) == (unknown, [])
    assert read_calls("It is sunny.", names) == ("It is sunny.", [])


def test_call_schemas_follow_the_choice() -> None:
    weather = ClientFunction(**WEATHER["function"])
    time_ = ClientFunction(**TIME["function"])
    named = call_schema([weather, time_], NamedClientFunction(name="get_time"), True)
    assert named == time_.parameters
    assert call_schema([weather], "auto", True) is None
    many = call_schema([weather, time_], "required", True)
    assert many is not None and many["type"] == "array" and many["minItems"] == 1
    one = call_schema([weather, time_], "required", False)
    assert one is not None and len(one["anyOf"]) == 2
    assert one["anyOf"][0]["properties"]["name"]["enum"] == ["get_weather"]


def test_turns_render_as_text_any_template_reads() -> None:
    call = ClientToolCall(id="call_1", name="get_time", arguments='{"zone": "UTC"}')
    assistant = turn_message(ChatTurn(role="assistant", content="", tool_calls=[call]))
    assert assistant == {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>',
    }
    result = ChatTurn(role="tool", content="12:00", tool_call_id="call_1")
    assert turn_message(result) == {"role": "tool", "content": "12:00"}


def test_stream_deltas_of_a_call_join_to_its_arguments() -> None:
    arguments = json.dumps({"city": "Paris", "unit": "C", "note": "x" * 60})
    call = ClientToolCall(id="call_9", name="get_weather", arguments=arguments)
    first, *rest = tool_call_deltas(2, call)
    assert first == {
        "index": 2,
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert len(rest) > 2 and all(set(d) == {"index", "function"} for d in rest)
    assert "".join(d["function"]["arguments"] for d in rest) == arguments


def test_the_conversation_maps_onto_the_job() -> None:
    settings = Settings(model=None)
    call: Any = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    body = ChatCompletionRequest.model_validate(
        {
            "model": "sciserve-direct",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                *USER,
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
            ],
            "tools": [WEATHER],
            "tool_choice": NAMED,
            "parallel_tool_calls": False,
        }
    )
    request = to_solve_request(body, settings)
    assert request.problem == USER[0]["content"] and request.system == "Be brief."
    assert [t.role for t in request.history or ()] == ["user", "assistant"]
    continuation = request.continuation or []
    assert [t.role for t in continuation] == ["assistant", "tool"]
    assert continuation[0].tool_calls == [
        ClientToolCall(id="call_1", name="get_weather", arguments="{}")
    ]
    assert continuation[1].tool_call_id == "call_1"
    assert [f.name for f in request.client_tools or ()] == ["get_weather"]
    assert request.client_tool_choice == NamedClientFunction(name="get_weather")
    assert request.parallel_tool_calls is False and request.tools is None


# --- auto: a model that writes calls in Qwen's format (ScriptedEngine) -----------------

TWO_CALLS = (
    "Let me check.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>'
)
SCRIPT = [("weather in Paris", TWO_CALLS), ("temperature", "It is 21 C in Paris.")]


@pytest.fixture(scope="module")
def scripted(tiny_model: TinyModel) -> Iterator[EmbeddedServer]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
    settings = tiny_settings(tiny_model, port=free_port(), mount_tools=False)
    engine = ScriptedEngine(tokenizer, SCRIPT)
    with EmbeddedServer(settings, ready_timeout_s=120, engine=engine) as server:
        yield server


def test_auto_reads_the_models_calls_and_streams_them(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    kwargs: Any = {"model": MODEL, "messages": USER, "tools": [WEATHER, TIME]}
    completion = client.chat.completions.create(**kwargs)
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Paris", "unit": "C"}),
        ("get_time", {"zone": "CET"}),
    ]
    assert len({c.id for c in calls}) == 2
    request = scripted.engine.calls[-1]
    # The tiny model's template takes no `tools`: the functions are in the system turn.
    assert request.json_schema is None and request.tools is None
    assert request.messages[0]["role"] == "system" and "get_time" in request.messages[0]["content"]
    with client.chat.completions.stream(**kwargs) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        (c.function.name, c.function.arguments)  # type: ignore[union-attr]
        for c in calls
    ]
    assert final.choices[0].message.content == "Let me check."
    one = client.chat.completions.create(**kwargs, parallel_tool_calls=False)
    assert [c.function.name for c in one.choices[0].message.tool_calls or []] == ["get_weather"]  # type: ignore[union-attr]


def test_the_results_reach_the_policy_and_it_answers(scripted: EmbeddedServer) -> None:
    client = _client(scripted)
    call: Any = {
        "id": "call_7",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'},
    }
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            *USER,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_7", "content": '{"temperature": 21}'},
        ],
        tools=[WEATHER],
    )
    [choice] = completion.choices
    assert choice.finish_reason == "stop" and choice.message.content == "It is 21 C in Paris."
    assert not choice.message.tool_calls
    messages = scripted.engine.calls[-1].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["content"] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}'
        "\n</tool_call>"
    )
    assert messages[3]["content"] == '{"temperature": 21}'


def test_an_engine_that_cannot_force_a_call_says_so(scripted: EmbeddedServer) -> None:
    before = _calls_metric("unparsed")
    with pytest.raises(openai.BadRequestError) as refused:
        _client(scripted).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Say hi."}],
            tools=[WEATHER],
            tool_choice="required",
        )
    assert "structured outputs" in str(refused.value)
    assert _calls_metric("unparsed") == before + 1


def test_a_schema_the_engine_cannot_enforce_is_a_400(service: Service) -> None:
    broken: Any = {
        "type": "function",
        "function": {
            "name": "odd",
            "parameters": {"type": "object", "properties": {"x": {"type": "no-such-type"}}},
        },
    }
    client = _client(service)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            tools=[broken],
            tool_choice={"type": "function", "function": {"name": "odd"}},
        )
    assert "schema" in str(refused.value)
    # The engine still serves the next request.
    completion = client.chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER], tool_choice=NAMED, max_tokens=64
    )
    assert completion.choices[0].finish_reason == "tool_calls"
