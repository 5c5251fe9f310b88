"""The teacher: a generated question solved with the real tool, in the conversation
the served policy has (AWL's layout, workers/strategies/awl.py), written as the trace
record a served job leaves (workers/traces.py), so the training builders read it as
they read the policy's own runs.

For a question with options or a numeric one in a tool domain (AWL's JSON layout):
1. the domain's system turn and first user turn (`awl_tool_turn`), showing the
   domain's tools as the policy reads them (`policy_spec`): for MuJoCo only the
   scene's own tool (`scene_tool`), plus `answer_question`;
2. the call, one JSON line in AWL's format with `thought`, holding the arguments the
   question states as the shared reader reads them (`contract.awl_questions`; climate
   and epidemiology questions state their generator's arguments);
3. the call as the served policy's reader parses it, run by the served policy's tool
   client over HTTP; the PDE and MuJoCo servers in `numerics: "awl"` (AWL's tools made
   AWL's answers), as a server started with SCISERVE_TOOL_NUMERICS=awl runs every call;
4. the result fed back as the served tool loop feeds it ("Feedback from '{tool}': …");
5. the answer read from the result by AWL's rules, as an `answer_question` call.
MATH-style problems (gsm_symbolic) take AWL's text ReAct turns instead: the derived
program as `write_and_run_code`, "Feedback: Output: …", then "Answer: …".

A trajectory is kept only when the answer the served reader reads from its last turn
is the question's reference (and its feedback was not cut short: the model must see
every number it answers from).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from contract.answers import ResolvedType, extract_answer, format_number, is_correct
from contract.awl_questions import (
    asked_number,
    choose,
    option_letter,
    parse_mujoco,
    parse_pde,
    series,
    served_options,
)
from contract.schemas import SolveRequest, SolveResult, Strategy, TraceEvent
from contract.tool_specs import policy_tools
from entrypoints.teacher.problems import Problem, canonical
from entrypoints.teacher.reference import read_value
from jobqueue.protocol import Job
from workers.engines.base import Completion, GenerationRequest, Sampling
from workers.job_sink import EngineCall
from workers.prompts import (
    ANSWER_QUESTION_SPEC,
    AWL_SYSTEM_REACT,
    AWL_SYSTEMS,
    awl_tool_turn,
    react_feedback,
)
from workers.strategies.awl import DOMAIN_SERVER, react_output
from workers.strategies.reading import answer_call_text, parse_function_call
from workers.strategies.tool_loop import MAX_TOOL_RESULT_CHARS, awl_result_feedback
from workers.tools.client import ToolCall, ToolClient
from workers.traces import Recorder, build_record

AWL_NUMERICS_SERVERS = frozenset({"pde", "mechanics"})
TEACHER_MODEL = "sciserve-teacher"  # the record's `model`: who wrote the outputs
ROLE = "policy"  # the role the outputs train
EXACT_DOMAINS = frozenset({"math"})  # gsm_symbolic's answers are integers: exact match


@dataclass
class Turn:
    """One assistant turn: the conversation before it, and what the teacher wrote."""

    messages: list[dict[str, str]]
    output: str


@dataclass
class Trajectory:
    problem: Problem
    turns: list[Turn] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    tools_shown: list[str] = field(default_factory=list)
    answer: str | None = None
    correct: bool = False
    dropped: str | None = None  # why it is not kept; None: kept
    long_turns: list[int] = field(default_factory=list)  # turns over the token budget

    @property
    def kept(self) -> bool:
        return self.dropped is None and self.correct


@dataclass(frozen=True)
class TeacherIdentity:
    """What the record names as its engine: the teacher, with no adapters."""

    model_name: str = TEACHER_MODEL

    def adapters(self) -> list[str]:
        return []


class Teacher:
    """Solves problems with the tool servers of `tools` (the served policy's client)."""

    def __init__(self, tools: ToolClient):
        self.tools = tools
        self._specs: dict[str, dict[str, dict[str, Any]]] = {}

    async def specs(self, server: str) -> dict[str, dict[str, Any]]:
        if server not in self._specs:
            listed = await self.tools.manifest([server])
            self._specs[server] = {spec["function"]["name"]: spec for spec in listed}
        return self._specs[server]

    async def shown(self, problem: Problem) -> list[dict[str, Any]]:
        """The tools the policy is shown for this question, as it reads them."""
        specs = await self.specs(DOMAIN_SERVER[problem.domain])
        return policy_tools(problem.question, problem.domain, list(specs.values()))

    async def solve(self, problem: Problem) -> Trajectory:
        if problem.domain == "math":
            return await self._react(problem)
        return await self._json(problem)

    async def _json(self, problem: Problem) -> Trajectory:
        out = Trajectory(problem)
        shown = await self.shown(problem)
        out.tools_shown = [spec["function"]["name"] for spec in shown]
        stated = stated_call(problem)
        if stated is None:
            out.dropped = "question not read"
            return out
        tool, arguments = stated
        if tool not in out.tools_shown:
            out.dropped = f"{tool} is not among the tools shown"
            return out
        if canonical(arguments) != canonical(problem.arguments):
            out.dropped = "the question states other arguments than its generator drew"
            return out
        hint = problem.domain in ("mechanics", "pde")  # AwlGenerate: AWL's training data
        first = [
            {"role": "system", "content": AWL_SYSTEMS[problem.domain]},
            {
                "role": "user",
                "content": awl_tool_turn(
                    problem.question, problem.options, problem.domain,
                    [*shown, ANSWER_QUESTION_SPEC], hint=hint,
                ),
            },
        ]  # fmt: skip
        call_line = call_text(tool, call_thought(problem, tool), arguments)
        out.turns.append(Turn(first, call_line))
        parsed = parse_function_call(call_line)  # the served reader's view of the call
        assert parsed is not None and parsed.name == tool
        sent = dict(parsed.parameters)
        if DOMAIN_SERVER[problem.domain] in AWL_NUMERICS_SERVERS:
            sent["numerics"] = "awl"
        call = await self.tools.invoke(tool, sent)
        out.calls.append(call)
        if not call.ok or not isinstance(call.result, dict):
            out.dropped = f"tool error: {call.error or call.status_code}"
            return out
        feedback = awl_result_feedback(tool, call)
        if len(str(call.result.get("text", ""))) > MAX_TOOL_RESULT_CHARS:
            out.dropped = "feedback cut short"
            return out
        reading = read_answer(problem, call.result)
        if reading is None:
            out.dropped = "answer not read from the result"
            return out
        answer, process = reading
        history = [*first, {"role": "assistant", "content": call_line}, feedback]
        final = answer_line(tool_thought(problem), process, answer)
        out.turns.append(Turn(history, final))
        out.answer = served_answer(final, problem)
        out.correct = graded(out.answer, problem)
        if not out.correct:
            out.dropped = "answer differs from the reference"
        return out

    async def _react(self, problem: Problem) -> Trajectory:
        out = Trajectory(problem, tools_shown=[problem.tool])
        code = str(problem.arguments["code"])
        first = [
            {"role": "system", "content": AWL_SYSTEM_REACT},
            {"role": "user", "content": f"Problem: {problem.question}"},
        ]
        action = (
            "Thought: I will compute the answer from the quantities in the problem, step by "
            "step, in Python.\nAction: write_and_run_code\nCode:\n```python\n"
            f"{code.rstrip()}\n```"
        )
        out.turns.append(Turn(first, action))
        # AwlGenerate._react sends the block with an empty thought
        call = await self.tools.invoke(problem.tool, {"thought": "", "code": code})
        out.calls.append(call)
        printed = (call.result or {}).get("stdout", "") if isinstance(call.result, dict) else ""
        lines = [line for line in str(printed).splitlines() if line.strip()]
        if not call.ok or not lines:
            out.dropped = f"program failed: {call.error or (call.result or {}).get('stderr')}"
            return out
        feedback = react_feedback(react_output(call))
        value = extract_answer(lines[-1], "number")
        if value is None:
            out.dropped = "the program printed no number"
            return out
        history = [*first, {"role": "assistant", "content": action}, feedback]
        final = (
            f"Thought: The program printed {value}.\nAction: answer_question\n"
            f"Solution: Running the computation step by step gives {value}, so the answer is "
            f"\\boxed{{{value}}}.\nAnswer: {value}"
        )
        out.turns.append(Turn(history, final))
        out.answer = served_answer(final, problem)
        out.correct = graded(out.answer, problem)
        if not out.correct:
            out.dropped = "answer differs from the reference"
        return out


def stated_call(problem: Problem) -> tuple[str, dict[str, Any]] | None:
    """The tool and arguments the question states, read as the served policy's shared
    reader reads AWL's templates; climate and epidemiology questions are generated from
    their arguments, which they state in words."""
    if problem.domain == "mechanics":
        parsed = parse_mujoco(problem.question)
        return (parsed[0], parsed[1]) if parsed else None
    if problem.domain == "pde":
        args = parse_pde(problem.question)
        return ("setup_and_solve", args) if args else None
    return problem.tool, dict(problem.arguments)


def call_text(tool: str, thought: str, arguments: dict[str, Any]) -> str:
    """One JSON line in AWL's call format, `thought` first, numbers as the question
    writes them (3, not 3.0)."""
    parameters = {"thought": thought, **written(arguments)}
    return json.dumps({"name": tool, "parameters": parameters}, ensure_ascii=False)


def written(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [written(v) for v in value]
    return value


def call_thought(problem: Problem, tool: str) -> str:
    what = problem.ask.quantity if problem.ask else "the answer"
    return f"To find {what}, I run {tool} with the parameters the question gives."


def tool_thought(problem: Problem) -> str:
    return f"The {problem.tool} result gives the value the question asks for."


def read_answer(problem: Problem, result: dict[str, Any]) -> tuple[str, str] | None:
    """(answer, solving process) from the tool's result: the letter of the option AWL's
    rules mark (choice), or the value itself (open)."""
    ask = problem.ask
    assert ask is not None
    options = served_options(problem.options) if problem.options else None
    if problem.domain == "mechanics":
        parsed = parse_mujoco(problem.question)
        asked = problem.question.split("\n\n")[-1]
        numbers = series(result.get("awl") or {}, parsed[2], asked) if parsed else None
        if not numbers:
            return None
        if options is not None:
            letter, read = choose(options, numbers, asked)
        else:
            letter, read = None, asked_number(numbers, asked)
        text = _mechanics_process(ask.rule, ask.quantity, ask.unit, numbers, read)
    else:
        read = read_value(ask, result)
        if read is None:
            return None
        letter = option_letter(options, read) if options is not None else None
        text = f"The tool gives {ask.quantity} = {read} {ask.unit}".rstrip() + "."
    if options is None:
        return _plain(read), text
    if letter is None:
        return None
    chosen = problem.options[ord(letter) - ord("A")] if problem.options else ""
    where = "lies in" if chosen.endswith(")") else "matches"
    return letter, f"{text} This {where} option {letter}: {chosen}."


def _mechanics_process(rule: str, quantity: str, unit: str, numbers: list[float], read: Any) -> str:
    if rule == "range":
        return f"In the simulation log, {quantity} goes from {read[0]} to {read[1]} {unit}."
    if rule == "trend":
        return (
            f"In the simulation log, {quantity} starts at {numbers[0]} {unit} and ends at "
            f"{numbers[-1]} {unit}, which is the trend '{read}'."
        )
    if rule == "max_abs":
        return f"The largest absolute value of {quantity} in the simulation log is {read} {unit}."
    return f"The simulation log ends with {quantity} = {read} {unit}."


def _plain(value: Any) -> str:
    return format_number(value) if isinstance(value, int | float) else str(value)


def answer_line(thought: str, process: str, answer: str) -> str:
    """The final turn: AWL's `answer_question` call."""
    parameters = {"thought": thought, "sloving_process": process, "answer": answer}
    return json.dumps({"name": "answer_question", "parameters": parameters}, ensure_ascii=False)


def served_answer(output: str, problem: Problem) -> str | None:
    """The answer the served policy reads from a last output (SolveContext._answer:
    `answer_question`'s own answer first, then the rendered call, else the text)."""
    answer_type: ResolvedType = "choice" if problem.answer_type == "choice" else "number"
    call = parse_function_call(output)
    if call is not None and call.is_answer:
        given = str(call.parameters.get("answer") or "").strip()
        found = extract_answer(given, answer_type, problem.options) if given else None
        if found is not None:
            return found
        text = answer_call_text(call) or output
        return extract_answer(text, answer_type, problem.options)
    return extract_answer(output, answer_type, problem.options)


def graded(answer: str | None, problem: Problem) -> bool:
    answer_type: ResolvedType = "choice" if problem.answer_type == "choice" else "number"
    tolerance = 0.0 if problem.domain in EXACT_DOMAINS else None
    if tolerance is None:
        return is_correct(answer, problem.reference, answer_type, problem.options)
    return is_correct(answer, problem.reference, answer_type, problem.options, rel_tol=tolerance)


def record(trajectory: Trajectory) -> dict[str, Any]:
    """The trajectory as a trace record (format sciserve.trace), built by the worker's
    own record builder from the engine calls and the stage event a served adaptive job
    in AWL's layout leaves."""
    problem = trajectory.problem
    domain = problem.domain
    server = DOMAIN_SERVER[domain]
    request = SolveRequest(
        problem=problem.question,
        options=problem.options,
        answer_type="choice" if problem.answer_type == "choice" else "number",
        reference=problem.reference,
        tools=[server],
        strategy=Strategy(tools="auto", prompt_style="awl", domain=domain),  # type: ignore[arg-type]
    )
    job_id = f"teacher-{problem.id}-{uuid.uuid4().hex[:8]}"
    calls = [
        EngineCall(
            stage=0,
            request=GenerationRequest(
                messages=turn.messages, role=ROLE, sampling=Sampling(temperature=0.0)
            ),
            completion=Completion(
                texts=[turn.output], token_ids=[[]], prompt_tokens=0, finish_reasons=["stop"]
            ),
        )
        for turn in trajectory.turns
    ]
    detail = {
        "mode": "adaptive",
        "prompt_style": "awl",
        "domain": domain,
        "domain_from": "request",
        "tools_shown": sorted(trajectory.tools_shown),
        "samples": 1,
        "decisions": ["tool"],
        "tool_calls": [[_call_json(call) for call in trajectory.calls]],
        "answers": [trajectory.answer],
        "teacher": {
            "problem": problem.id,
            "template": problem.template,
            "form": problem.form,
            "split": problem.split,
            "seed": problem.seed,
            "numerics": "awl" if server in AWL_NUMERICS_SERVERS else None,
        },
    }
    event = TraceEvent(stage="generate", role=ROLE, engine_calls=len(calls), detail=detail)
    result = SolveResult(
        id=job_id,
        answer=trajectory.answer,
        answer_text=trajectory.turns[-1].output if trajectory.turns else "",
        correct=trajectory.correct,
        used_tools=[call.tool for call in trajectory.calls],
    )
    job = Job(id=job_id, request=request, deadline=0.0)
    # The record builder reads only the engine's model name and adapters.
    identity: Any = TeacherIdentity()
    return build_record(job, result, Recorder(calls=calls, events=[event]), identity)


def _call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "tool": call.tool,
        "server": call.server,
        "arguments": call.arguments,
        "result": call.result,
        "error": call.error,
        "status_code": call.status_code,
        "elapsed_ms": call.elapsed_ms,
    }
