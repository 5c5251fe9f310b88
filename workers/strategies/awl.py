"""The adaptive strategy in AWL's own prompt layout (prompt style "awl").

An adapter trained with AWL's code expects AWL's conversation, so this stage builds it
(workers/prompts.py, "AWL's own layout"):
- the question's domain decides the system turn, the tools shown and the message
  limit; it comes from the request (`strategy.domain`), else from `classify_domain`;
- a domain with options (mechanics, pde, climate, epidemiology, or none known) gets
  the JSON-call layout: only that domain's tool server plus `answer_question`, one
  call per turn, results fed back as "Feedback from '{name}': {text}" user turns;
- MATH/SciBench-style problems (domain `math`, or no domain and no options) get AWL's
  text ReAct format: "Action: write_and_run_code" with a python block, answered by
  "Feedback: Output: …", until "Action: answer_question … Answer: …".
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, replace
from typing import Any

from contract.errors import ToolUnavailableError
from contract.tool_specs import policy_tools
from workers.engines.base import GenerationRequest
from workers.metrics import TOOL_DECISIONS
from workers.prompts import (
    ANSWER_FUNCTION,
    ANSWER_QUESTION_SPEC,
    AWL_SYSTEM_GENERIC,
    AWL_SYSTEM_REACT,
    AWL_SYSTEMS,
    AWL_TOOL_LIMIT_REACHED,
    REACT_FEEDBACK_STOP,
    awl_tool_turn,
    react_feedback,
)
from workers.strategies.context import Candidate, SolveContext
from workers.strategies.generate import PromptGenerate
from workers.strategies.tool_choice import LOOP_SHARE, fit_tools
from workers.strategies.tool_loop import awl_result_feedback, invoke, run_tool_loop
from workers.tools.client import ToolCall

log = logging.getLogger(__name__)
POLICY = "policy"
DOMAINS = ("mechanics", "pde", "climate", "epidemiology", "math")
# The tool server of each domain (AWL shows a question only its domain's tools).
DOMAIN_SERVER = {
    "mechanics": "mechanics",
    "pde": "pde",
    "climate": "climate",
    "epidemiology": "epidemiology",
    "math": "python",
}
# AWL stops a conversation past 10 messages for MuJoCo and PDE and 20 for climate,
# epidemiology and MATH: system, question, then a call and its feedback per tool use,
# so at most 4 and 9 tool calls before the answer.
DOMAIN_MAX_CALLS = {"mechanics": 4, "pde": 4, "climate": 9, "epidemiology": 9, "math": 9}
DEFAULT_MAX_CALLS = 4
# Words that place a problem in a domain; the domain with the most hits wins.
_KEYWORDS = {
    "pde": (
        "diffusion",
        "heat conduction",
        "dirichlet",
        "neumann",
        "periodic boundary",
        "boundary condition",
        "initial condition",
        "concentration",
        "checkerboard",
    ),
    "mechanics": (
        "pendulum",
        "ball",
        "sphere",
        "collision",
        "friction",
        "vehicle",
        "wheel",
        "gravity",
        "velocity",
        "damping",
        "box",
        "plane",
        "simulation time",
    ),
    "climate": (
        "climate",
        "ssp",
        "co2",
        "ch4",
        "greenhouse",
        "aerosol",
        "warming",
        "latitude",
        "longitude",
        "emission",
    ),
    "epidemiology": (
        "epidemic",
        "pandemic",
        "infection",
        "infected",
        "prevalence",
        "incidence",
        "hospital",
        "covid",
        "vaccin",
        "outbreak",
        "transmission",
    ),
}


def _keyword_hits(problem: str) -> tuple[str, int]:
    """The domain whose keywords the problem names most, and how many it names."""
    text = problem.lower()
    hits = {domain: sum(word in text for word in words) for domain, words in _KEYWORDS.items()}
    best = max(hits, key=lambda domain: hits[domain])
    return best, hits[best]


def classify_domain(problem: str, options: list[str] | None) -> str | None:
    """The domain a problem's words point to, or `math` for a problem without options
    that points nowhere (MATH/SciBench-style); None for an unplaced multiple choice."""
    best, hits = _keyword_hits(problem)
    if hits > 0:
        return best
    return None if options else "math"


def confident_domain(problem: str) -> str | None:
    """A scientific domain the problem names with at least two of its keywords, else
    None. Strict on purpose: it decides the layout a question is served in when the
    request names no domain, and one keyword ("box", "velocity", "hospital") placed 38
    of 400 gsm_symbolic word problems in a science domain, two placed 2; every AWL PDE
    and MuJoCo question and every generated climate and epidemiology one names two."""
    best, hits = _keyword_hits(problem)
    return best if hits >= 2 else None


def _action(text: str) -> tuple[str, str] | None:
    """ReAct: ("code", source) for a write_and_run_code action with a python block,
    ("answer", text) for answer_question, None when the output is neither."""
    lowered = text.lower()
    if "write_and_run_code" in lowered:
        block = re.search(r"```(?:python)?\s*\n(.*?)```", text, re.DOTALL)
        if block is not None:
            return "code", block.group(1).strip()
    if "answer_question" in lowered or "answer:" in lowered:
        return "answer", text
    return None


def react_output(call: ToolCall) -> str:
    """The python tool's result as AWL's write_and_run_code prints it."""
    if not call.ok:
        return f"Error: {call.error or f'HTTP {call.status_code}'}"
    result = call.result if isinstance(call.result, dict) else {}
    stdout, stderr = str(result.get("stdout") or ""), str(result.get("stderr") or "")
    text = (f"Output:\n{stdout}" if stdout else "") + (f"\n\nError:\n{stderr}" if stderr else "")
    return text or "No output"


class AwlGenerate:
    """Generate in AWL's layout; candidates and trace as the sciserve adaptive stage
    (decisions, tool calls, answers), plus the domain and how it was found."""

    name = "generate"

    def __init__(self, required: bool):
        self.required = required

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        strategy = ctx.request.strategy
        domain: str | None = strategy.domain
        source = "request"
        if domain is None:
            domain, source = classify_domain(ctx.request.problem, ctx.request.options), "classifier"
        servers = ctx.request.tools
        if domain is not None:
            server = DOMAIN_SERVER[domain]
            servers = [server] if servers is None or server in servers else servers
        try:
            if ctx.tools is None:
                raise ToolUnavailableError("No tool servers are configured for this worker.")
            specs = await ctx.tools.manifest(servers)
        except ToolUnavailableError as exc:
            if self.required:
                raise
            level = logging.DEBUG if ctx.tools is None else logging.WARNING
            log.log(level, "tools unavailable, answering directly: %s", exc.message)
            direct = PromptGenerate("direct", note={"tools_unavailable": exc.message})
            return await direct.run(ctx, candidates)
        role = ctx.role(POLICY)
        async with ctx.stage(self.name, role) as detail:
            detail.update(mode="adaptive", prompt_style="awl", domain=domain, domain_from=source)
            if domain == "math":
                fresh = await self._react(ctx, role, detail)
            else:
                fresh = await self._json(ctx, role, domain, specs, servers, detail)
            detail.update(
                samples=len(fresh),
                decisions=[c.decision for c in fresh],
                tool_calls=[[asdict(call) for call in c.tool_calls] for c in fresh],
                answers=[c.answer for c in fresh],
            )
        return fresh

    async def _first(
        self,
        ctx: SolveContext,
        role: str | None,
        messages: list[dict[str, str]],
        stop: tuple[str, ...],
    ) -> list[Candidate]:
        """K first turns: one greedy, K-1 sampled, one batch (as generate.sample)."""
        samples = ctx.own_samples
        greedy = replace(ctx.sampling(1, greedy=ctx.greedy_draw), stop=stop)
        requests = [GenerationRequest(messages=messages, role=role, sampling=greedy)]
        if samples > 1:
            sampled = replace(ctx.sampling(samples), stop=stop)
            requests.append(
                GenerationRequest(messages=messages, role=role, sampling=sampled, n=samples - 1)
            )
        completions = await ctx.generate(requests)
        texts = [text for completion in completions for text in completion.texts]
        fresh = [ctx.candidate("adaptive", messages, text) for text in texts]
        fresh[0].greedy = ctx.greedy_draw
        return fresh

    async def _json(
        self,
        ctx: SolveContext,
        role: str | None,
        domain: str | None,
        specs: list[dict[str, Any]],
        servers: list[str] | None,
        detail: dict[str, Any],
    ) -> list[Candidate]:
        extra = [] if self.required else [ANSWER_QUESTION_SPEC]
        system = AWL_SYSTEMS.get(domain or "", AWL_SYSTEM_GENERIC)
        hint = not self.required and domain in ("mechanics", "pde")

        def turn(functions: list[dict[str, Any]]) -> str:
            return awl_tool_turn(
                ctx.request.problem, ctx.request.options, domain, functions, hint=hint
            )

        budget = None
        if ctx.context_tokens is not None:
            fixed = ctx.count_tokens(system) + ctx.count_tokens(turn(extra)) + 16
            budget = int(ctx.context_tokens * (1 - LOOP_SHARE)) - ctx.max_tokens - fixed
        shown = fit_tools(
            ctx.request.problem,
            policy_tools(ctx.request.problem, domain, specs),
            budget_tokens=budget,
            count_tokens=ctx.count_tokens,
        )
        if not shown:
            raise ToolUnavailableError(
                f"No tool spec of {', '.join(servers or ['any server'])} fits the model's "
                f"context of {ctx.context_tokens} tokens next to this prompt."
            )
        functions = [*shown, *extra]
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": turn(functions)},
        ]
        fresh = await self._first(ctx, role, messages, ())
        for candidate in fresh:
            candidate.decision = "tool" if candidate.pending_call else "direct"
            TOOL_DECISIONS.labels(decision=candidate.decision).inc()
        names = {spec["function"]["name"] for spec in functions}
        detail["tools_shown"] = sorted(names - {ANSWER_FUNCTION})
        return await run_tool_loop(
            ctx,
            fresh,
            role,
            names,
            feedback=awl_result_feedback,
            max_calls=DOMAIN_MAX_CALLS.get(domain or "", DEFAULT_MAX_CALLS),
            limit_turn=AWL_TOOL_LIMIT_REACHED,
        )

    async def _react(
        self, ctx: SolveContext, role: str | None, detail: dict[str, Any]
    ) -> list[Candidate]:
        """AWL's MATH/SciBench loop: code runs on the python server, its output comes
        back as "Feedback: …", until an answer or AWL's 20-message limit."""
        messages = [
            {"role": "system", "content": AWL_SYSTEM_REACT},
            {"role": "user", "content": f"Problem: {ctx.request.problem}"},
        ]
        stop = (REACT_FEEDBACK_STOP,)
        fresh = await self._first(ctx, role, messages, stop)
        actions = [_action(c.raw) for c in fresh]
        for candidate, action in zip(fresh, actions, strict=True):
            candidate.decision = "tool" if action and action[0] == "code" else "direct"
            TOOL_DECISIONS.labels(decision=candidate.decision).inc()
        names = {"write_and_run_code"}
        detail["tools_shown"] = sorted(names)
        sampling = replace(ctx.sampling(1, greedy=True), stop=stop)
        for _ in range(DOMAIN_MAX_CALLS["math"]):
            looping = [
                (i, action[1]) for i, action in enumerate(actions) if action and action[0] == "code"
            ]
            if not looping:
                break
            requests, indices = [], []
            for index, code in looping:
                call = await invoke(ctx, "write_and_run_code", {"thought": "", "code": code}, names)
                fresh[index].tool_calls.append(call)
                turn = react_feedback(react_output(call))
                ctx.usage.tool_tokens += ctx.count_tokens(turn["content"])
                history = [
                    *fresh[index].messages,
                    {"role": "assistant", "content": fresh[index].raw},
                    turn,
                ]
                if ctx.fits(history):
                    requests.append(
                        GenerationRequest(messages=history, role=role, sampling=sampling)
                    )
                    indices.append(index)
                else:
                    actions[index] = None
            if not requests:
                break
            completions = await ctx.generate(requests)
            for index, request, completion in zip(indices, requests, completions, strict=True):
                fresh[index] = ctx.revise(
                    fresh[index], list(request.messages or []), completion.texts[0]
                )
                actions[index] = _action(fresh[index].raw)
        return fresh
