"""Generate: K candidates from one batched engine call (prefix caching shares the
prompt): one greedy sample and K-1 sampled ones, so a vote never has less than the
greedy answer to fall back to. Modes: direct, adaptive (AWL tool decision and tool
loop), think (TPO), and think with tools (TPO's prompt around the adaptive one)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from contract.errors import ToolUnavailableError
from workers.engines.base import GenerationRequest
from workers.metrics import THOUGHT_FORMAT_BREAKS, TOOL_DECISIONS
from workers.prompts import (
    ANSWER_FUNCTION,
    ANSWER_QUESTION_SPEC,
    direct_user_prompt,
    policy_messages,
    think_markers,
    think_wrap,
    tool_user_prompt,
)
from workers.strategies.client_tools import turn_message
from workers.strategies.context import BudgetSpent, Candidate, Mode, SolveContext
from workers.strategies.reading import format_broke
from workers.strategies.tool_choice import LOOP_SHARE, PROMPT_TOOL_CAP, show_tools
from workers.strategies.tool_loop import run_tool_loop
from workers.streaming import answer_stream

log = logging.getLogger(__name__)
POLICY = "policy"


async def sample(
    ctx: SolveContext, mode: Mode, prompt: str, detail: dict[str, Any], stream: bool = False
) -> list[Candidate]:
    """K candidates of one user prompt, after the few-shot turns: the first is greedy,
    the other K-1 come from one request with `n=K-1`; both go to the engine in one
    batch, so prefix caching shares the prompt.

    Think mode: a candidate whose output broke TPO's format (no response marker) is
    resampled once; if the resample breaks too, the first output stays, and of it only
    the final answer it states is visible (reading.hide_thought): never the output.

    `stream`: the greedy output is the answer itself (no tool prompt), so its text may
    stream to the client while it is generated, a think output once it is read
    (workers/streaming.py)."""
    history = [turn_message(turn) for turn in ctx.request.history or ()]
    messages = policy_messages(prompt, ctx.few_shot, ctx.request.system, history)
    on_text = answer_stream(ctx.sink, ctx.request, mode == "think") if stream else None
    samples = ctx.own_samples
    role = ctx.role(POLICY)
    completions = await ctx.generate_k(messages, role, samples, on_text)
    texts = [text for completion in completions for text in completion.texts]
    counts = [len(ids) for completion in completions for ids in completion.token_ids]
    fresh = [
        ctx.candidate(mode, messages, text, generated=count)
        for text, count in zip(texts, counts, strict=True)
    ]
    fresh[0].greedy = ctx.greedy_draw
    detail["finish_reasons"] = [r for c in completions for r in c.finish_reasons]
    detail["generated_tokens"] = counts
    if mode == "think":
        marker = think_markers(ctx.request.strategy.think_prompt)[1]
        broken = [i for i, text in enumerate(texts) if format_broke(text, marker)]
        detail["format_breaks"] = len(broken)
        THOUGHT_FORMAT_BREAKS.labels(after_resample="false").inc(len(broken))
        if broken:
            # Sampled, since a greedy resample of a greedy output would repeat it.
            resampling = ctx.sampling(2)
            try:
                redo = await ctx.generate(
                    [
                        GenerationRequest(messages=messages, role=role, sampling=resampling)
                        for _ in broken
                    ]
                )
            except BudgetSpent:  # no budget for a resample: the broken outputs stand
                redo = []
                detail["resample_skipped"] = "budget_tokens spent"
            still = broken[len(redo) :]  # not resampled: still broken
            for index, completion in zip(broken, redo, strict=False):
                again = ctx.candidate(
                    mode, messages, completion.texts[0], generated=len(completion.token_ids[0])
                )
                if format_broke(completion.texts[0], marker):
                    still.append(index)
                    continue
                again.greedy = fresh[index].greedy
                fresh[index] = again
            THOUGHT_FORMAT_BREAKS.labels(after_resample="true").inc(len(still))
            detail["resampled"] = len(redo)
            detail["format_breaks_after_resample"] = len(still)
            # Of those, the ones stating no readable answer: nothing of them is visible.
            detail["format_breaks_unanswered"] = sum(not fresh[i].raw for i in still)
        thoughts = ctx.thoughts_detail(fresh)
        if thoughts is not None:
            detail["thoughts"] = thoughts
    if on_text is not None:  # the streamed greedy output's answer, as decided above
        await on_text.settle(fresh[0].text)
    return fresh


class PromptGenerate:
    """Direct or think: one prompt, K samples, no tools."""

    name = "generate"

    def __init__(self, mode: Mode, note: dict[str, Any] | None = None):
        self.mode = mode
        self.note = note or {}  # extra detail for the trace event (why this mode ran)

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        prompt = direct_user_prompt(ctx.request.problem, ctx.request.options)
        if self.mode == "think":
            prompt = think_wrap(prompt, ctx.request.strategy.think_prompt)
        async with ctx.stage(self.name, ctx.role(POLICY)) as detail:
            detail.update(mode=self.mode, **self.note)
            fresh = await sample(ctx, self.mode, prompt, detail, stream=True)
            detail.update(samples=len(fresh), answers=[c.answer for c in fresh])
        return fresh


class AdaptiveGenerate:
    """AWL: the model sees the tools and `answer_question`, and either answers or calls
    a tool. A tool call runs a loop (call → result → continue) of at most
    `ctx.max_tool_calls` calls per candidate; all candidates still looping share one
    batched engine call per step.

    With the tool servers unreachable, `tools: auto` answers directly and says so in
    the trace; `tools: always` fails the job with the server's error.
    """

    name = "generate"

    def __init__(self, required: bool, think: bool = False):
        self.required = required
        self.think = think  # TPO's thought prompt around the tool prompt

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        try:
            functions = await self._functions(ctx)
        except ToolUnavailableError as exc:
            if self.required:
                raise
            # No tool servers configured is a deployment choice; unreachable ones are news.
            level = logging.DEBUG if ctx.tools is None else logging.WARNING
            log.log(level, "tools unavailable, answering directly: %s", exc.message)
            mode: Mode = "think" if self.think else "direct"
            direct = PromptGenerate(mode, note={"tools_unavailable": exc.message})
            return await direct.run(ctx, candidates)
        prompt = tool_user_prompt(
            ctx.request.problem, ctx.request.options, functions, required=self.required
        )
        if self.think:
            prompt = think_wrap(prompt, ctx.request.strategy.think_prompt)
        role = ctx.role(POLICY)
        async with ctx.stage(self.name, role) as detail:
            fresh = await sample(ctx, "think" if self.think else "adaptive", prompt, detail)
            for candidate in fresh:
                candidate.decision = "tool" if candidate.pending_call else "direct"
                TOOL_DECISIONS.labels(decision=candidate.decision).inc()
            names = {spec["function"]["name"] for spec in functions}
            fresh = await run_tool_loop(ctx, fresh, role, names)
            detail.update(
                mode="adaptive+think" if self.think else "adaptive",
                samples=len(fresh),
                tools_shown=sorted(names - {ANSWER_FUNCTION}),
                decisions=[c.decision for c in fresh],
                tool_calls=[[asdict(call) for call in c.tool_calls] for c in fresh],
                answers=[c.answer for c in fresh],
            )
        return fresh

    async def _functions(self, ctx: SolveContext) -> list[dict[str, Any]]:
        """The allowed tools worth showing that fit the context: the python tool and at
        most a few relevant others (tool_choice.show_tools, PROMPT_TOOL_CAP), plus
        `answer_question` unless a tool is required."""
        if ctx.tools is None:
            raise ToolUnavailableError("No tool servers are configured for this worker.")
        specs = await ctx.tools.manifest(ctx.request.tools)
        extra = [] if self.required else [ANSWER_QUESTION_SPEC]
        budget = None
        if ctx.context_tokens is not None:
            bare = tool_user_prompt(
                ctx.request.problem, ctx.request.options, extra, required=self.required
            )
            fixed = ctx.count_tokens(bare) + sum(
                ctx.count_tokens(m["content"]) + 8 for m in ctx.few_shot
            )
            budget = int(ctx.context_tokens * (1 - LOOP_SHARE)) - ctx.max_tokens - fixed - 16
        shown = show_tools(
            ctx.request.problem,
            specs,
            budget_tokens=budget,
            count_tokens=ctx.count_tokens,
            cap=PROMPT_TOOL_CAP,
        )
        if not shown:
            raise ToolUnavailableError(
                f"No tool spec fits the model's context of {ctx.context_tokens} tokens next to "
                f"this prompt and max_tokens={ctx.max_tokens}."
            )
        return [*shown, *extra]
