"""Client-side function calling (OpenAI's `tools`): the policy sees the client's
functions and may answer with calls to them; the job then returns the calls, the
client runs them and continues the conversation with their results.

One generation, no refine stage (the request model refuses the rest). The functions
go to the chat template's `tools` (Qwen's template renders them in its system turn and
reads `<tool_call>` blocks back); a template without tool support gets them listed in
the system turn instead. `tool_choice`:
- `none`: the functions are not shown;
- `auto`: the output is read with the AWL call parser (`<tool_call>` blocks, Llama 3.1
  JSON, OpenAI's `arguments`); a call of a function the client did not send is text;
- `required`: structured outputs force a JSON array of calls (vLLM's own schema for it);
- a name: structured outputs force that function's arguments.
An engine without structured outputs only gets the instruction; an output that is no
call then fails the job with a clear error, unless it stopped at max_tokens (the
answer is then the text, finish reason `length`).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from contract.errors import InvalidStrategyError
from contract.role_prompts import format_options
from contract.schemas import ChatTurn, ClientFunction, ClientToolCall, NamedClientFunction
from workers.engines.base import GenerationRequest
from workers.metrics import CLIENT_TOOL_CALLS
from workers.prompts import policy_messages
from workers.strategies.context import Candidate, SolveContext
from workers.strategies.reading import FunctionCall, parse_function_call

POLICY = "policy"
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
FUNCTIONS_SYSTEM = (
    "You may call the following functions. To call one, answer only with\n"
    '<tool_call>\n{"name": <function name>, "arguments": <arguments as a JSON object>}\n'
    "</tool_call>\n(one block per call); otherwise answer the user directly.\n\n"
    "Functions:\n"
)
REQUIRED_INSTRUCTION = "You must call one or more of the functions now."


def turn_message(turn: ChatTurn) -> dict[str, str]:
    """A turn as a plain chat message. An assistant's calls become the `<tool_call>`
    blocks Qwen's template writes for them and a result stays a `tool` turn (which
    Qwen and Llama 3.1 templates render), so any template reads them as text."""
    content = turn.content
    if turn.role == "assistant" and turn.tool_calls:
        blocks = [
            "<tool_call>\n"
            + json.dumps({"name": call.name, "arguments": _arguments(call.arguments)})
            + "\n</tool_call>"
            for call in turn.tool_calls
        ]
        content = "\n".join([content, *blocks] if content else blocks)
    return {"role": turn.role, "content": content}


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def openai_tool(function: ClientFunction) -> dict[str, Any]:
    """OpenAI's tool spec of a function, as chat templates take it."""
    spec: dict[str, Any] = {"name": function.name, "parameters": function.parameters}
    if function.description:
        spec["description"] = function.description
    return {"type": "function", "function": spec}


def call_schema(
    functions: list[ClientFunction], choice: Any, parallel: bool
) -> dict[str, Any] | None:
    """The JSON schema structured outputs force, as vLLM's OpenAI server does: a named
    function's parameters, or for `required` an array of `{name, parameters}` calls
    (one such object when parallel calls are off)."""
    if isinstance(choice, NamedClientFunction):
        return next(f.parameters for f in functions if f.name == choice.name)
    if choice != "required":
        return None
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [f.name]},
                "parameters": f.parameters,
            },
            "required": ["name", "parameters"],
            "additionalProperties": False,
        }
        for f in functions
    ]
    if not parallel:  # one call object, not an array: not every backend bounds maxItems
        return {"anyOf": calls}
    return {"type": "array", "minItems": 1, "items": {"anyOf": calls}}


def read_calls(text: str, names: set[str]) -> tuple[str, list[FunctionCall]]:
    """(content, calls of the client's functions) of a free-form output: `<tool_call>`
    blocks, else the first call in the text. The content is the prose before the
    first call block; an output whose only call is the whole text has none."""
    blocks = _TOOL_CALL_BLOCK.findall(text)
    if blocks:
        parsed = [parse_function_call(block) for block in blocks]
        calls = [call for call in parsed if call is not None and call.name in names]
        if calls:
            return text[: text.find("<tool_call>")].strip(), calls
        return text, []
    call = parse_function_call(text)
    if call is not None and call.name in names:
        return "", [call]
    return text, []


def _forced_calls(text: str, choice: Any) -> list[FunctionCall]:
    """The calls of a structured output (an engine that forced the schema), or []."""
    try:
        value = json.loads(text)
    except ValueError:
        return []
    if isinstance(choice, NamedClientFunction):
        return [FunctionCall(choice.name, value)] if isinstance(value, dict) else []
    if isinstance(value, dict):  # required, one call
        value = [value]
    if not isinstance(value, list):
        return []
    return [
        FunctionCall(item["name"], item["parameters"])
        for item in value
        if isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and isinstance(item.get("parameters"), dict)
    ]


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


class ClientToolGenerate:
    """Generate for a job with client functions or tool-call turns: one greedy output
    that either answers or calls the client's functions."""

    name = "generate"

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        request = ctx.request
        functions = list(request.client_tools or ())
        choice = request.client_tool_choice
        shown = functions if functions and choice != "none" else []
        tokenizer = ctx.engine.tokenizer()
        native = "tools" in str(getattr(tokenizer, "chat_template", None) or "")
        system = request.system
        if shown and not native:
            listed = "\n".join(json.dumps(openai_tool(f)["function"]) for f in shown)
            system = "\n\n".join(filter(None, [system, FUNCTIONS_SYSTEM + listed]))
        problem = request.problem
        if request.options:
            problem = f"{problem}\n\n{format_options(request.options)}"
        forced = choice == "required" or isinstance(choice, NamedClientFunction)
        if shown and forced and not request.continuation:
            problem = f"{problem}\n\n{REQUIRED_INSTRUCTION}"
        history = [turn_message(turn) for turn in request.history or ()]
        messages = policy_messages(problem, ctx.few_shot, system, history)
        messages += [turn_message(turn) for turn in request.continuation or ()]
        if shown and forced and request.continuation:
            messages.append({"role": "user", "content": REQUIRED_INSTRUCTION})
        schema = call_schema(shown, choice, request.parallel_tool_calls) if shown else None
        role = ctx.role(POLICY)
        async with ctx.stage(self.name, role) as detail:
            generation = GenerationRequest(
                messages=messages,
                role=role,
                sampling=ctx.sampling(1, greedy=True),
                tools=[openai_tool(f) for f in shown] if shown and native else None,
                json_schema=schema,
            )
            [completion] = await ctx.generate([generation])
            text, finish = completion.texts[0], completion.finish_reasons[0]
            forced_here = schema is not None and getattr(ctx.engine, "supports_json_schema", False)
            if forced_here:
                content, calls = "", _forced_calls(text, choice)
            else:
                content, calls = read_calls(text, {f.name for f in shown})
                if isinstance(choice, NamedClientFunction):
                    calls = [call for call in calls if call.name == choice.name]
            if not request.parallel_tool_calls:
                calls = calls[:1]
            outcome = self._outcome(shown, forced, calls)
            if outcome == "unparsed":
                content = text
                if finish != "length":
                    self._count(functions, outcome)
                    raise InvalidStrategyError(
                        "The model did not call a function although tool_choice asks for "
                        f"{_choice_text(choice)}, and this worker's engine cannot force the "
                        "call (no structured outputs). Use tool_choice 'auto'."
                        if not forced_here
                        else "The model's forced function call is not valid JSON."
                    )
            self._count(functions, outcome)
            made = [
                ClientToolCall(
                    id=new_call_id(),
                    name=call.name,
                    arguments=json.dumps(call.parameters, ensure_ascii=False),
                )
                for call in calls
            ]
            candidate = ctx.candidate("direct", messages, content if made else text)
            if made:
                candidate.answer, candidate.client_calls = None, made
            detail.update(
                mode="client_tools",
                samples=1,
                finish_reasons=[finish],
                client_functions_shown=[f.name for f in shown],
                client_tool_choice=_choice_text(choice),
                structured_output=forced_here,
                client_outcome=outcome,
                client_tool_calls=[call.model_dump() for call in made],
                answers=[candidate.answer],
            )
        return [candidate]

    @staticmethod
    def _count(functions: list[ClientFunction], outcome: str) -> None:
        """Only generations the client sent functions for (not bare tool-call turns)."""
        if functions:
            CLIENT_TOOL_CALLS.labels(outcome=outcome).inc()

    @staticmethod
    def _outcome(shown: list[ClientFunction], forced: bool, calls: list[FunctionCall]) -> str:
        if not shown:
            return "hidden"
        if calls:
            return "called"
        return "unparsed" if forced else "answered"


def _choice_text(choice: Any) -> str:
    return f"function {choice.name!r}" if isinstance(choice, NamedClientFunction) else choice
