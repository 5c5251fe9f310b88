"""The AWL tool loop: call → result → continue, for the candidates that called a tool.

A candidate whose last output is a tool call gets the tool's result as a `tool` turn
and continues; it stops when it answers (`answer_question`) or has spent
`ctx.max_tool_calls` calls, after which one last turn asks it to answer. Candidates
still looping share one batched engine call per step, and their tool calls run
concurrently. Each tool call gets what remains of the job's deadline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from contract.errors import ToolUnavailableError
from workers.engines.base import GenerationRequest
from workers.metrics import TOOL_RUNS_REFUSED
from workers.prompts import ANSWER_FUNCTION, TOOL_LIMIT_REACHED, awl_feedback, tool_result_message
from workers.strategies.context import BudgetSpent, Candidate, SolveContext
from workers.tools.client import ToolCall

MAX_TOOL_RESULT_CHARS = 4000  # a tool result fed back to the model; the trace keeps it all
Feedback = Callable[[str, ToolCall], dict[str, str]]


def sciserve_feedback(tool: str, call: ToolCall) -> dict[str, str]:
    """The result as a `tool` turn holding its JSON (the "sciserve" prompt style)."""
    return tool_result_message(tool, _payload(call))


def awl_text(call: ToolCall) -> str:
    """What AWL's tools print: the server's AWL return text when it sends one (`text`
    beside the JSON result), else the result as JSON; an error as "Error: …"."""
    if not call.ok:
        return f"Error: {call.error or f'HTTP {call.status_code}'}"
    result = call.result
    if isinstance(result, dict) and isinstance(result.get("text"), str):
        text = result["text"]
    elif isinstance(result, str):
        text = result
    else:
        text = json.dumps(result, ensure_ascii=False)
    if len(text) > MAX_TOOL_RESULT_CHARS:
        return text[:MAX_TOOL_RESULT_CHARS] + " …(truncated)"
    return text


def awl_result_feedback(tool: str, call: ToolCall) -> dict[str, str]:
    """AWL's feedback turn: "Feedback from '{tool}': {text}" from the user."""
    return awl_feedback(tool, awl_text(call))


async def run_tool_loop(
    ctx: SolveContext,
    candidates: list[Candidate],
    role: str | None,
    names: set[str],
    *,
    feedback: Feedback = sciserve_feedback,
    max_calls: int | None = None,
    limit_turn: str = TOOL_LIMIT_REACHED,
) -> list[Candidate]:
    """Step every candidate whose last output is a tool call until it answers or
    spends its calls (`max_calls`, default `ctx.max_tool_calls`); the last step asks
    for `answer_question` with `limit_turn`. `feedback` renders a result as a turn."""
    assert ctx.tools is not None
    limit = ctx.max_tool_calls if max_calls is None else max_calls
    for step in range(limit + 1):
        looping = [
            (index, call)
            for index, candidate in enumerate(candidates)
            if (call := candidate.pending_call) is not None
        ]
        if not looping:
            break
        if step < limit:  # the candidates' calls run concurrently
            results = await asyncio.gather(
                *(invoke(ctx, call.name, call.parameters, names) for _, call in looping)
            )
            turns = []
            for (index, call), result in zip(looping, results, strict=True):
                candidates[index].tool_calls.append(result)
                turns.append(feedback(call.name, result))
                ctx.usage.tool_tokens += ctx.count_tokens(turns[-1]["content"])
        else:
            turns = [{"role": "user", "content": limit_turn}] * len(looping)
        requests, indices = [], []
        for (index, _), turn in zip(looping, turns, strict=True):
            candidate = candidates[index]
            messages = [
                *candidate.messages,
                {"role": "assistant", "content": candidate.raw},
                turn,
            ]
            if not ctx.fits(messages):
                continue  # no room to continue: the candidate keeps its last output
            requests.append(
                GenerationRequest(
                    messages=messages, role=role, sampling=ctx.sampling(1, greedy=True)
                )
            )
            indices.append(index)
        if not requests:
            break
        try:
            completions = await ctx.generate(requests)
        except BudgetSpent:
            break  # the job's budget_tokens is spent: each candidate keeps its last output
        for index, request, completion in zip(indices, requests, completions, strict=True):
            assert request.messages is not None
            candidates[index] = ctx.revise(
                candidates[index], list(request.messages), completion.texts[0]
            )
    return candidates


async def invoke(
    ctx: SolveContext, tool: str, arguments: dict[str, Any], names: set[str]
) -> ToolCall:
    """A tool error is an answer for the model to read, an unreachable server too:
    the loop goes on and the model can answer without it. Only the tools this job
    was shown (its `tools` servers) can run."""
    assert ctx.tools is not None
    if tool not in names:
        known = ", ".join(sorted(names - {ANSWER_FUNCTION}))
        return ToolCall(
            tool,
            "",
            arguments,
            None,
            f"There is no tool named {tool!r}; the tools are: {known}.",
            404,
            0.0,
        )
    if ctx.max_job_tool_calls is not None and ctx.tally.tool_runs >= ctx.max_job_tool_calls:
        TOOL_RUNS_REFUSED.inc()
        return ToolCall(
            tool,
            "",
            arguments,
            None,
            f"This job has used all {ctx.max_job_tool_calls} tool runs it may start; answer "
            "with what you have.",
            429,
            0.0,
        )
    ctx.tally.tool_runs += 1
    span = ctx.span.tool_call(tool, arguments)  # its traceparent reaches the tool server
    try:
        call = await ctx.tools.invoke(
            tool, arguments, timeout_s=ctx.remaining_s(), headers=span.headers()
        )
    except ToolUnavailableError as exc:
        call = ToolCall(tool, "", arguments, None, exc.message, 503, 0.0)
    except BaseException as exc:
        span.end(error=exc)
        raise
    span.end_tool_call(call)
    ctx.note_tool(call)
    return call


def _payload(call: ToolCall) -> dict[str, Any]:
    if call.ok:
        text = json.dumps(call.result, ensure_ascii=False)
        if len(text) > MAX_TOOL_RESULT_CHARS:
            return {"result": text[:MAX_TOOL_RESULT_CHARS] + " …(truncated)"}
        return {"result": call.result}
    return {"error": call.error or f"HTTP {call.status_code}"}
