"""Between OpenAI's chat format and sciserve's job: a chat request becomes a
`SolveRequest`, a job's result becomes a chat completion with honest usage and the
`sciserve` extension object built from the job's trace.

The conversation maps onto the job as follows: the last user message is the problem,
system (and developer) messages are extra instructions, and the turns before the last
user message are history that stays in the policy's prompt. Client functions (`tools`
of type function) become `client_tools`; the assistant's calls of them and their
results after the problem become the job's `continuation`, and a job that answers
with calls becomes a message with `tool_calls` and finish reason `tool_calls`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from app.openai.errors import OpenAIRequestError
from app.openai.presets import strategy_for
from contract.openai import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessageIn,
    ChatMessageOut,
    ChatUsage,
    Choice,
    CompletionTokensDetails,
    FunctionCallOut,
    FunctionTool,
    NamedToolChoice,
    ToolCallOut,
)
from contract.schemas import (
    ChatTurn,
    ClientFunction,
    NamedClientFunction,
    SolveRequest,
    SolveResult,
    Strategy,
    TraceEvent,
    Usage,
)
from contract.settings import Settings

REFINE_STAGES = ("selfcorrect", "art_ask", "art_refine", "art_trust")
T = TypeVar("T")


def _strategy(body: ChatCompletionRequest, settings: Settings) -> Strategy:
    """The model's preset, with the fields of an explicit `strategy` on top."""
    preset = strategy_for(body.model, settings)
    if body.strategy is None:
        return preset
    fields = {**preset.model_dump(), **body.strategy.model_dump(exclude_unset=True)}
    try:
        return Strategy.model_validate(fields)
    except ValidationError as exc:
        raise OpenAIRequestError(
            f"The strategy {fields} is not valid: {exc.errors()[0]['msg']}", param="strategy"
        ) from None


def _turn(message: ChatMessageIn) -> ChatTurn:
    """A message as a turn of the job: user (also `name`d ones), assistant with its
    calls of client functions, or a function's result (`tool`)."""
    role: Literal["user", "assistant", "tool"] = (
        message.role if message.role in ("assistant", "tool") else "user"  # type: ignore[assignment]
    )
    calls = [
        {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
        for call in message.tool_calls or ()
    ]
    return ChatTurn.model_validate(
        {
            "role": role,
            "content": message.text(),
            "tool_calls": calls or None,
            "tool_call_id": message.tool_call_id if message.role == "tool" else None,
        }
    )


def _checked(build: Callable[[], T], param: str) -> T:
    """`build()`, with a validation error as a 400 naming `param` and the field."""
    try:
        return build()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error.get("loc", ()))
        raise OpenAIRequestError(
            f"Invalid request: {param}.{field}: {error['msg']}.", param=f"{param}.{field}"
        ) from None


def _conversation(
    body: ChatCompletionRequest,
) -> tuple[str, str | None, list[ChatTurn], list[ChatTurn]]:
    """(problem, system instructions, history, continuation) of the messages. The
    problem is the last user message; after it come only the assistant's function
    calls and their results (the client's side of a tool loop), ending on a result."""
    messages = body.messages
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    last = len(messages) - 1
    problem = users[-1] if users else last
    after = messages[problem + 1 :]
    if not users or (after and messages[last].role != "tool"):
        raise OpenAIRequestError(
            f"The last message must be the user's problem, or the results ('tool' messages) of "
            f"the assistant's function calls after it, not a {messages[last].role!r} message.",
            param=f"messages.{last}.role",
        )
    for index, message in enumerate(after, start=problem + 1):
        if message.role not in ("assistant", "tool") or (
            message.role == "assistant" and not message.tool_calls
        ):
            raise OpenAIRequestError(
                "After the user's problem only the assistant's function calls and their "
                f"results ('tool' messages) may follow, not a {message.role!r} message"
                + (" without tool_calls." if message.role == "assistant" else "."),
                param=f"messages.{index}.role",
            )
    system = [m.text() for m in messages if m.role in ("system", "developer") and m.text()]
    turns = [
        (index, _checked(partial(_turn, message), f"messages.{index}"))
        for index, message in enumerate(messages)
        if message.role not in ("system", "developer") and index != problem
    ]
    history = [turn for index, turn in turns if index < problem]
    continuation = [turn for index, turn in turns if index > problem]
    return messages[problem].text(), "\n\n".join(system) or None, history, continuation


def _client_tools(
    body: ChatCompletionRequest, strategy: Strategy, continued: bool
) -> dict[str, Any]:
    """The job's client-function fields, checked here so every refusal names the
    OpenAI field it is about."""
    functions = (
        [
            _checked(
                partial(
                    ClientFunction.model_validate, tool.function.model_dump(exclude={"strict"})
                ),  # type: ignore[union-attr]
                f"tools.{index}.function",
            )
            for index, tool in enumerate(body.tools)
        ]
        if body.tools and isinstance(body.tools[0], FunctionTool)
        else []
    )
    names = [function.name for function in functions]
    if len(set(names)) < len(names):
        raise OpenAIRequestError(
            f"Two functions in tools have the same name: {sorted(names)}.", param="tools"
        )
    choice = body.tool_choice
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in names:
            raise OpenAIRequestError(
                f"tool_choice names the function {choice.function.name!r}, which is not in "
                f"tools ({', '.join(map(repr, names)) or 'no client functions were sent'}).",
                param="tool_choice",
            )
    elif choice == "required" and not functions:
        raise OpenAIRequestError(
            "tool_choice 'required' needs client functions in tools "
            '([{"type": "function", "function": {...}}]).',
            param="tool_choice",
        )
    if not functions and not continued:
        return {}
    if not strategy.serves_client_functions:
        raise OpenAIRequestError(
            "Client functions and tool-call turns are served with one sample and no refine "
            f"stage: model {body.model!r} runs strategy {strategy.name!r}. Use the base model "
            "or 'sciserve-direct'.",
            param="tools" if functions else "model",
        )
    named = (
        NamedClientFunction(name=choice.function.name)
        if isinstance(choice, NamedToolChoice)
        else None
    )
    return {
        "client_tools": functions or None,
        "client_tool_choice": named or choice or "auto",
        "parallel_tool_calls": body.parallel_tool_calls is not False,
    }


def to_solve_request(body: ChatCompletionRequest, settings: Settings) -> SolveRequest:
    """The job a chat request stands for; what sciserve cannot honour is a 400."""
    if body.stop is not None:
        raise OpenAIRequestError(
            "stop sequences are not served: every strategy reads the whole answer.",
            param="stop",
        )
    problem, system, history, continuation = _conversation(body)
    strategy = _strategy(body, settings)
    client = _client_tools(body, strategy, bool(continuation))
    servers = body.tools if body.tools and isinstance(body.tools[0], str) else None
    try:
        return SolveRequest(
            problem=problem,
            options=body.options,
            answer_type=body.answer_type,
            strategy=strategy,
            tools=servers,  # type: ignore[arg-type]  # tool server names
            continuation=continuation or None,
            **client,
            reference=body.reference,
            max_tokens=body.max_completion_tokens or body.max_tokens,
            seed=body.seed,  # a vote's sample i draws seed + i
            budget_tokens=body.budget_tokens,
            timeout_s=body.timeout_s,
            return_trace=True,  # the extension object is built from the trace
            reveal_thoughts=body.reveal_thoughts,
            adapters=body.adapters,
            system=system,
            history=history or None,
            stream=body.stream,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error.get("loc", ()))
        param = (
            "messages"
            if field in ("problem", "system") or field.startswith(("history", "continuation"))
            else "tools"
            if field.startswith("client_tools")
            else field
        )
        raise OpenAIRequestError(
            f"Invalid request: {field}: {error['msg']}.", param=param
        ) from None


def chat_usage(usage: Usage) -> ChatUsage:
    """OpenAI's usage of a job: every engine call's prompt and completion tokens; the
    hidden thoughts are completion tokens too, and also `reasoning_tokens`."""
    completion = usage.completion_tokens + usage.thought_tokens
    return ChatUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=completion,
        total_tokens=usage.prompt_tokens + completion,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=usage.thought_tokens),
    )


def _public(detail: dict[str, Any]) -> dict[str, Any]:
    """A stage's detail without thoughts: those go only to `reasoning`."""
    return {key: value for key, value in detail.items() if key != "thoughts"}


def _votes(trace: tuple[TraceEvent, ...]) -> dict[str, Any] | None:
    select = next((e for e in trace if e.stage == "select"), None)
    if select is None:
        return None
    votes: dict[str, int] = select.detail.get("votes", {})
    total = sum(votes.values())
    return {
        "distribution": votes,
        "agreement": max(votes.values()) / total if total else 0.0,
        "method": select.detail.get("method"),
        "tied": select.detail.get("tied", []),
        "greedy_answer": select.detail.get("greedy_answer"),
    }


def _tool_calls(trace: tuple[TraceEvent, ...]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for event in trace:
        for candidate, made in enumerate(event.detail.get("tool_calls") or []):
            calls.extend({"candidate": candidate, **call} for call in made)
    return calls


def extension(result: SolveResult, strategy: Strategy, model: str) -> dict[str, Any]:
    """The `sciserve` object: what the strategy did, built from the job's trace."""
    trace = result.trace or ()
    generate = next((e for e in trace if e.stage == "generate"), None)
    return {
        "job_id": result.id,
        "model": model,
        "strategy": strategy.model_dump(),
        "strategy_name": strategy.name,
        "answer": result.answer,
        "initial_answer": result.initial_answer,
        "correct": result.correct,
        "used_tools": result.used_tools,
        "tool_calls": _tool_calls(trace),
        "client_tool_calls": generate.detail.get("client_outcome") if generate else None,
        "tool_decisions": generate.detail.get("decisions") if generate else None,
        "sample_answers": generate.detail.get("answers") if generate else None,
        "votes": _votes(trace),
        "refine": [
            {"stage": e.stage, **_public(e.detail)} for e in trace if e.stage in REFINE_STAGES
        ],
        "stages": [e.model_dump(exclude={"detail"}) for e in trace],
        "usage": result.usage.model_dump(),
        "timings": result.timings.model_dump(),
    }


def finish_reason(result: SolveResult, strategy: Strategy) -> str:
    """`tool_calls` when the answer is calls of client functions; `length` when it is
    one generation that hit max_tokens."""
    if result.tool_calls:
        return "tool_calls"
    trace = result.trace or ()
    generate = next((e for e in trace if e.stage == "generate"), None)
    if (
        strategy.single_output
        and generate is not None
        and generate.detail.get("finish_reasons", [None])[0] == "length"
    ):
        return "length"
    return "stop"


def content_of(result: SolveResult) -> str:
    """The visible answer: the response only, thoughts never."""
    return result.answer_text.strip()


def openai_tool_calls(result: SolveResult) -> list[ToolCallOut] | None:
    """The job's calls of client functions in OpenAI's message format."""
    if not result.tool_calls:
        return None
    return [
        ToolCallOut(id=call.id, function=FunctionCallOut(name=call.name, arguments=call.arguments))
        for call in result.tool_calls
    ]


def to_completion(
    result: SolveResult, request: SolveRequest, model: str, created: int | None = None
) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{result.id}",
        created=created or int(time.time()),
        model=model,
        choices=[
            Choice(
                message=ChatMessageOut(
                    content=content_of(result) or (None if result.tool_calls else ""),
                    reasoning=result.thoughts,
                    tool_calls=openai_tool_calls(result),
                ),
                finish_reason=finish_reason(result, request.strategy),  # type: ignore[arg-type]
            )
        ],
        usage=chat_usage(result.usage),
        sciserve=extension(result, request.strategy, model),
    )
