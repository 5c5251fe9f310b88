"""Between OpenAI's chat format and sciserve's job: a chat request becomes a
`SolveRequest`, a job's result becomes a chat completion with honest usage and the
`sciserve` extension object built from the job's trace.

The conversation maps onto the job as follows: the last user message is the problem,
system (and developer) messages are extra instructions, and the turns before the last
user message are history that stays in the policy's prompt.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import ValidationError

from app.openai_errors import OpenAIRequestError
from app.openai_presets import strategy_for
from contract.openai import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessageOut,
    ChatUsage,
    Choice,
    CompletionTokensDetails,
    FunctionTool,
)
from contract.schemas import ChatTurn, SolveRequest, SolveResult, Strategy, TraceEvent, Usage
from contract.settings import Settings

REFINE_STAGES = ("selfcorrect", "art_ask", "art_refine", "art_trust")


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


def _conversation(body: ChatCompletionRequest) -> tuple[str, str | None, list[ChatTurn]]:
    """(problem, system instructions, history) of the messages."""
    messages = body.messages
    last = len(messages) - 1
    if messages[last].role != "user":
        raise OpenAIRequestError(
            f"The last message must be the user's problem, not a {messages[last].role!r} message.",
            param=f"messages.{last}.role",
        )
    system = [m.text() for m in messages if m.role in ("system", "developer") and m.text()]
    history: list[ChatTurn] = []
    for index, message in enumerate(messages[:last]):
        if message.role in ("system", "developer"):
            continue
        if message.role == "tool" or message.tool_calls:
            raise OpenAIRequestError(
                "Tool-call turns in the history are not served; send their outcome as text.",
                param=f"messages.{index}",
            )
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        history.append(ChatTurn(role=role, content=message.text()))
    return messages[last].text(), "\n\n".join(system) or None, history


def to_solve_request(body: ChatCompletionRequest, settings: Settings) -> SolveRequest:
    """The job a chat request stands for; what sciserve cannot honour is a 400."""
    if body.stop is not None:
        raise OpenAIRequestError(
            "stop sequences are not served: every strategy reads the whole answer.",
            param="stop",
        )
    if body.tools and isinstance(body.tools[0], FunctionTool):
        raise OpenAIRequestError(
            "Client-side function tools are not served yet; name sciserve's tool servers "
            "(python, pde, mechanics, climate, epidemiology) to let the server call them.",
            param="tools",
        )
    if body.tool_choice is not None and body.tool_choice not in ("none", "auto"):
        raise OpenAIRequestError(
            "tool_choice 'required' or a named function needs client-side function tools, "
            "which are not served yet.",
            param="tool_choice",
        )
    problem, system, history = _conversation(body)
    try:
        return SolveRequest(
            problem=problem,
            options=body.options,
            answer_type=body.answer_type,
            strategy=_strategy(body, settings),
            tools=body.tools,  # type: ignore[arg-type]  # names: client tools refused above
            reference=body.reference,
            max_tokens=body.max_completion_tokens or body.max_tokens,
            timeout_s=body.timeout_s,
            return_trace=True,  # the extension object is built from the trace
            reveal_thoughts=body.reveal_thoughts,
            system=system,
            history=history or None,
            stream=body.stream,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error.get("loc", ()))
        param = (
            "messages" if field in ("problem", "system") or field.startswith("history") else field
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
    """`length` when the answer is one generation that hit max_tokens."""
    trace = result.trace or ()
    generate = next((e for e in trace if e.stage == "generate"), None)
    single = strategy.samples == 1 and strategy.attempts == 1 and not strategy.art
    if (
        single
        and generate is not None
        and generate.detail.get("finish_reasons", [None])[0] == "length"
    ):
        return "length"
    return "stop"


def content_of(result: SolveResult) -> str:
    """The visible answer: the response only, thoughts never."""
    return result.answer_text.strip()


def to_completion(
    result: SolveResult, request: SolveRequest, model: str, created: int | None = None
) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{result.id}",
        created=created or int(time.time()),
        model=model,
        choices=[
            Choice(
                message=ChatMessageOut(content=content_of(result), reasoning=result.thoughts),
                finish_reason=finish_reason(result, request.strategy),  # type: ignore[arg-type]
            )
        ],
        usage=chat_usage(result.usage),
        sciserve=extension(result, request.strategy, model),
    )
