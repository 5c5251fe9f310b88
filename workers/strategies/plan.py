"""Generate by PEARL (plan, then execute): the policy writes a plan over a fixed set of
actions (workers/prompts.py, `PLAN_ACTIONS`), then carries out each step in turn with
every earlier result fed forward, then answers from the results.

Trace: a `plan` event (the plans and whether they were readable), one `plan_step`
event per step number (each candidate's action, result and any code run), and a
`plan_answer` event. `sciserve_plan_steps_total{action}` counts executed steps.

A candidate whose plan has no readable step answers directly from the problem with
the answer prompt (no steps), so an unreadable plan costs no more than a direct answer.
COMPUTE steps may carry a python code block, run on the python tool server when the
strategy allows tools and one is configured; its output becomes the step's result.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from contract.errors import ToolUnavailableError
from contract.schemas import PLAN_MAX_STEPS
from workers.engines.base import GenerationRequest
from workers.metrics import PLAN_STEPS
from workers.prompts import (
    PLAN_ACTIONS,
    plan_answer_prompt,
    plan_prompt,
    plan_step_prompt,
)
from workers.strategies.context import Candidate, SolveContext
from workers.strategies.tool_loop import invoke
from workers.tools.client import ToolCall

POLICY = "policy"
MAX_STEPS = PLAN_MAX_STEPS  # steps executed before the answer; more are dropped
MAX_RESULT_CHARS = 600  # a step's result as fed forward
# A step line: "1. FIND: …", "Step 2: compute - …", "- DERIVE: …", a bare "ANSWER: …",
# or "N. COMPARE: …": the prompt shows 'N. ACTION: …', and the 0.5B demo model kept the
# N on every step of every plan (measured: no plan was readable on 50 gsm_symbolic
# problems before this line accepted it; 16 of 16 after). Another example in the prompt
# made it copy the example instead (5 of 16 plans), so the prompt stays and the reading
# widens; the action name decides.
_STEP = re.compile(
    r"^\s*(?:(?:step\s*)?(?:\d+|n)\s*[.):]|[-*\u2022])?\s*\**\s*"
    rf"({'|'.join(PLAN_ACTIONS)})\s*\**\s*[:\-\u2013]\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_CODE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)


def parse_plan(text: str) -> list[tuple[str, str]]:
    """(ACTION, task) per numbered line with a known action, in order; the steps
    after the first ANSWER are dropped, and so is the ANSWER itself (the answer
    stage does it)."""
    steps = []
    for match in _STEP.finditer(text):
        action, task = match.group(1).upper(), match.group(2).strip()
        if action == "ANSWER":
            break
        steps.append((action, task))
    return steps[:MAX_STEPS]


@dataclass
class Line:
    """One candidate's plan and the results of its steps so far."""

    plan_text: str
    steps: list[tuple[str, str]]
    results: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    greedy: bool = False

    @property
    def plan_lines(self) -> list[str]:
        return [f"{action}: {task}" for action, task in self.steps]


class PlanGenerate:
    """Plan (K plans: one greedy, K-1 sampled, one batch), the steps (one batched
    engine call per step number over all candidates), then the answers."""

    name = "plan"

    def __init__(self, tools: bool):
        self.tools = tools  # COMPUTE may run python

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        role = ctx.role(POLICY)
        lines = await self._plan(ctx, role)
        code = self.tools and await self._has_python(ctx)
        for number in range(1, max((len(line.steps) for line in lines), default=0) + 1):
            await self._step(ctx, role, lines, number, code)
        return await self._answer(ctx, role, lines)

    async def _has_python(self, ctx: SolveContext) -> bool:
        allowed = ctx.request.tools is None or "python" in ctx.request.tools
        if ctx.tools is None or not allowed:
            return False
        try:
            await ctx.tools.manifest(["python"])
        except ToolUnavailableError:
            return False
        return True

    async def _plan(self, ctx: SolveContext, role: str | None) -> list[Line]:
        async with ctx.stage("plan", role) as detail:
            messages = [
                *ctx.few_shot,
                {"role": "user", "content": plan_prompt(ctx.question, MAX_STEPS)},
            ]
            samples = ctx.own_samples
            completions = await ctx.generate_k(messages, role, samples)
            texts = [text for completion in completions for text in completion.texts]
            lines = [Line(text, parse_plan(text)) for text in texts]
            lines[0].greedy = ctx.greedy_draw
            detail.update(
                plans=[line.plan_lines for line in lines],
                readable=[bool(line.steps) for line in lines],
            )
        return lines

    async def _step(
        self, ctx: SolveContext, role: str | None, lines: list[Line], number: int, code: bool
    ) -> None:
        active = [i for i, line in enumerate(lines) if len(line.steps) >= number]
        async with ctx.stage("plan_step", role) as detail:
            requests = []
            for i in active:
                action, task = lines[i].steps[number - 1]
                prompt = plan_step_prompt(
                    ctx.question,
                    lines[i].plan_lines,
                    lines[i].results,
                    number,
                    action,
                    task,
                    code=code and action == "COMPUTE",
                )
                requests.append(
                    GenerationRequest(
                        messages=[{"role": "user", "content": prompt}],
                        role=role,
                        sampling=ctx.sampling(len(lines), greedy=lines[i].greedy),
                    )
                )
            completions = await ctx.generate(requests)
            ran: list[dict[str, object] | None] = []
            for i, completion in zip(active, completions, strict=True):
                action = lines[i].steps[number - 1][0]
                PLAN_STEPS.labels(action=action.lower()).inc()
                result = completion.texts[0].strip()
                block = _CODE.search(result) if code and action == "COMPUTE" else None
                call = None
                if block is not None:
                    call = await invoke(
                        ctx,
                        "write_and_run_code",
                        {"thought": f"step {number}", "code": block.group(1)},
                        {"write_and_run_code"},
                    )
                    lines[i].tool_calls.append(call)
                    output = _stdout(call)
                    if output:
                        result = output
                    ctx.usage.tool_tokens += ctx.count_tokens(result)
                lines[i].results.append(result[:MAX_RESULT_CHARS])
                ran.append(asdict(call) if call is not None else None)
            detail.update(
                step=number,
                candidates=active,
                actions=[lines[i].steps[number - 1][0] for i in active],
                results=[lines[i].results[-1] for i in active],
                tool_calls=ran,
            )

    async def _answer(
        self, ctx: SolveContext, role: str | None, lines: list[Line]
    ) -> list[Candidate]:
        async with ctx.stage("plan_answer", role) as detail:
            conversations = [
                [
                    {
                        "role": "user",
                        "content": plan_answer_prompt(
                            ctx.request.problem, ctx.request.options, line.plan_lines, line.results
                        ),
                    }
                ]
                for line in lines
            ]
            completions = await ctx.generate(
                [
                    GenerationRequest(
                        messages=messages,
                        role=role,
                        sampling=ctx.sampling(len(lines), greedy=line.greedy),
                    )
                    for messages, line in zip(conversations, lines, strict=True)
                ]
            )
            fresh = []
            for messages, line, completion in zip(conversations, lines, completions, strict=True):
                candidate = ctx.candidate("direct", messages, completion.texts[0])
                candidate.greedy = line.greedy
                candidate.tool_calls = line.tool_calls
                candidate.decision = "tool" if line.tool_calls else "direct"
                fresh.append(candidate)
            detail.update(
                samples=len(fresh),
                steps=[len(line.steps) for line in lines],
                answers=[c.answer for c in fresh],
            )
        return fresh


def _stdout(call: ToolCall) -> str:
    """A run's printed output, or its error, as the step's result."""
    if not call.ok:
        return f"Error: {call.error or f'HTTP {call.status_code}'}"
    result = call.result if isinstance(call.result, dict) else {}
    out = str(result.get("stdout") or "").strip()
    err = str(result.get("stderr") or "").strip()
    return out or (f"Error: {err}" if err else "")
