"""What every stage shares: the job's context, its candidates, and one stage protocol.

Each strategy (DESIGN §4) is a small stage with one job: `run(ctx, candidates)`
returns the new candidates. Generate turns [] into K candidates, refine maps K to K,
select turns K into 1. The context owns the bookkeeping every stage needs and would
otherwise repeat: engine calls with token accounting, the trace event with its
duration metric, and reading an output into a visible response and a hidden thought.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from contract.answers import ResolvedType, extract_answer, is_correct
from contract.errors import PromptTooLongError
from contract.role_prompts import question_text
from contract.schemas import BASE_ADAPTER, ClientToolCall, SolveRequest, TraceEvent, Usage
from workers.engines.base import (
    Completion,
    Engine,
    GenerationRequest,
    Sampling,
    render_prompt_ids,
)
from workers.job_sink import NO_SINK, NO_SPAN, EngineCall, JobSink, TraceSpan
from workers.metrics import SOLVE_TOKENS, STAGE_DURATION
from workers.prompts import think_markers
from workers.strategies.confidence import AutoPolicy
from workers.strategies.reading import (
    FunctionCall,
    answer_call_text,
    hide_thought,
    parse_function_call,
)
from workers.tools.client import ToolCall, ToolClient

Mode = Literal["direct", "adaptive", "think"]


@dataclass
class Candidate:
    """One line of reasoning from generation through refinement.

    `messages` is the conversation that produced `raw` (the last assistant turn, thought
    removed); refine stages continue it. `thought` is the hidden part and leaves the
    worker only when the request may reveal it.
    """

    mode: Mode
    messages: list[dict[str, str]]
    raw: str
    text: str
    answer: str | None
    thought: str | None = None
    call: FunctionCall | None = None  # the function call in `raw`, if any
    tool_calls: list[ToolCall] = field(default_factory=list)
    decision: Literal["tool", "direct"] | None = None
    greedy: bool = False  # the greedy sample: votes fall back to it (select.py)
    # Calls of the client's functions this output made (client_tools.py): the job's
    # result returns them instead of an answer.
    client_calls: list[ClientToolCall] = field(default_factory=list)

    @property
    def pending_call(self) -> FunctionCall | None:
        """The tool call `raw` ends on, when it calls a tool instead of answering."""
        return self.call if self.call is not None and not self.call.is_answer else None

    def continued(self, instruction: str) -> list[dict[str, str]]:
        """The conversation with this answer and a new user instruction appended."""
        return [
            *self.messages,
            {"role": "assistant", "content": self.raw},
            {"role": "user", "content": instruction},
        ]


@dataclass(frozen=True)
class Reading:
    """An output split into what the user may see and what stays hidden."""

    visible: str
    text: str  # what answers are extracted from (an answer_question call, rendered)
    thought: str | None
    call: FunctionCall | None


class SampleAborted(Exception):
    """Raised inside one sample of a vote that stopped early (sample_race.py): its
    engine request was aborted (its tokens are counted) or it was about to start one."""


class BudgetSpent(Exception):
    """The job's `budget_tokens` has nothing left for another engine call: the stage that
    asked ends, and the job answers with what it had before that stage."""


@dataclass
class SampleScope:
    """One sample of a vote run on its own (sample_race.py): which draw it is, the
    engine requests it has in flight (so the race can abort them), whether the race
    has stopped it, and how many engine calls it made (each gets its own seed)."""

    index: int
    seed: int  # the vote's base seed: this sample's first sampled request draws seed + index
    in_flight: set[str] = field(default_factory=set)
    aborted: bool = False
    calls: int = 0
    # Finish reasons of the engine requests that were running when the race stopped
    # this sample ("abort" where the engine stopped them; the trace shows them).
    stopped_with: list[str] = field(default_factory=list)
    # Ask the engine for token log probabilities (strategy.auto's greedy sample), and
    # those of this sample's latest output: the one its answer was read from.
    logprobs: bool = False
    last_logprobs: list[float] | None = None

    def next_seed(self) -> int:
        """Sample i's first request draws base + i, as vLLM seeds the children of an
        n>1 request; its later requests (a refine turn, a resample) draw seeds of
        their own, derived from the same two numbers, so a seed replays the sample."""
        seed = self.seed + self.index + 7919 * self.calls
        self.calls += 1
        return seed % (2**31)


@dataclass
class JobTally:
    """What every sample of a job counts together: the tool runs it started (the job's
    cap, `max_job_tool_calls`) and the tools it used, in order."""

    tool_runs: int = 0
    used_tools: list[str] = field(default_factory=list)
    # What remains of the job's `budget_tokens` (generated and thought tokens); engine
    # calls reserve their max_tokens from it and give back what they did not generate.
    budget_left: int | None = None

    def reserve(self, request: GenerationRequest) -> GenerationRequest:
        """The request with its max_tokens capped to what remains, reserved; raises
        `BudgetSpent` when not one token per sample is left."""
        if self.budget_left is None:
            return request
        allowance = min(request.sampling.max_tokens, self.budget_left // request.n)
        if allowance < 1:
            raise BudgetSpent
        self.budget_left -= allowance * request.n
        return replace(request, sampling=replace(request.sampling, max_tokens=allowance))

    def refund(self, request: GenerationRequest, generated: int) -> None:
        """Give back what a reserved request did not generate."""
        if self.budget_left is not None:
            self.budget_left += request.sampling.max_tokens * request.n - generated


class Stage(Protocol):
    """One step of the pipeline. `name` is a metric label, so it is a fixed string."""

    name: str

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]: ...


@dataclass
class StagesRun:
    """What a run of stages left: the candidates, the answers right after the first
    stage (`initial_answer`), and whether the job's budget cut the run short."""

    candidates: list[Candidate]
    initial: list[str | None] | None = None
    budget_spent: bool = False


async def run_stages(
    ctx: SolveContext, stages: Sequence[Stage], candidates: list[Candidate]
) -> StagesRun:
    """The stages in order. A stage that finds the job's `budget_tokens` spent ends the
    run: the candidates from before it stand (its own partial work is dropped); with
    none yet (generate itself could not run), `BudgetSpent` goes on to the caller."""
    run = StagesRun(candidates)
    for position, stage in enumerate(stages):
        try:
            run.candidates = await stage.run(ctx, run.candidates)
        except BudgetSpent:
            if not run.candidates:
                raise
            run.budget_spent = True
            break
        if position == 0:
            run.initial = [c.answer for c in run.candidates]
    return run


@dataclass
class SolveContext:
    """One job's state; stages read the request and append to usage and trace."""

    request: SolveRequest
    answer_type: ResolvedType
    engine: Engine
    max_tokens: int
    context_tokens: int | None = None
    sample_temperature: float = 0.7
    sample_top_p: float = 1.0
    seed: str = ""  # the job's: random choices (the Truster's order) replay with it
    tools: ToolClient | None = None
    max_tool_calls: int = 4
    # Tool (sandbox) runs the whole job may start, over every sample and stage; the
    # gateway charges for them up front, so a job cannot run more than it paid for.
    max_job_tool_calls: int | None = None
    tally: JobTally = field(default_factory=JobTally)
    few_shot: list[dict[str, str]] = field(default_factory=list)
    # The job's listener (workers/job_sink.py): stage events, answer deltas, engine calls.
    sink: JobSink = NO_SINK
    deadline: float | None = None  # the job's (Unix time); None: no limit (stage tests)
    usage: Usage = field(default_factory=Usage)
    trace: list[TraceEvent] = field(default_factory=list)
    # Set on the context of one sample of a vote run one sample per context
    # (sample_race.py): its stages then make one candidate, drawn as that sample.
    scope: SampleScope | None = None
    # How a raced vote ended (sample_race.RaceReport.detail), for the select stage's event.
    vote_stop: dict[str, Any] | None = None
    auto_policy: AutoPolicy = field(default_factory=AutoPolicy)  # strategy.auto's threshold
    # The trace span new spans open under (workers/job_spans.py): the job's (`sink.span`), a
    # sample's in a race, the running stage's while a stage runs.
    span: TraceSpan = NO_SPAN
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.seed.encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))

    def fork(self, scope: SampleScope, sink: JobSink) -> SolveContext:
        """A context for one sample of this job's vote: the same request, engine, tools,
        few-shot turns, deadline and tallies, its own usage and trace (the race merges
        them back) and its own sink (the race re-emits what it heard)."""
        return replace(
            self,
            sink=sink,
            usage=Usage(),
            trace=[],
            scope=scope,
            seed=f"{self.seed}/{scope.index}",
            few_shot=list(self.few_shot),
        )

    @property
    def used_tools(self) -> list[str]:
        return self.tally.used_tools

    @property
    def own_samples(self) -> int:
        """How many candidates this context's generate stage makes: one for a sample of
        a race, else the strategy's `samples`."""
        return 1 if self.scope is not None else self.request.strategy.vote_size

    @property
    def greedy_draw(self) -> bool:
        """Whether the first candidate this context generates is the vote's greedy one."""
        return self.scope is None or self.scope.index == 0

    @property
    def reveal(self) -> bool:
        """The gateway refuses `reveal_thoughts` to keys without the scope (403), so a
        job that carries it is allowed to see thoughts."""
        return self.request.reveal_thoughts

    @property
    def question(self) -> str:
        """The problem with its options, as the Asker and Truster see it."""
        return question_text(self.request.problem, self.request.options)

    def remaining_s(self) -> float | None:
        """What remains of the job's deadline, for a tool call's own timeout."""
        return None if self.deadline is None else self.deadline - time.time()

    def role(self, name: str) -> str | None:
        """The adapter to request for a role: the one the request chose for it
        (`adapters`, checked loaded before the job ran), else the role's own, else None
        for the base model (also when the request chose "base")."""
        chosen = self.request.chosen_adapters()
        if name in chosen:
            return None if chosen[name] == BASE_ADAPTER else chosen[name]
        return name if name in self.engine.adapters() else None

    def sampling(self, n: int, *, greedy: bool = False) -> Sampling:
        """Greedy for one sample; K samples need temperature to differ at all. top_p is
        1.0 (temperature-only) unless configured: nucleus sampling costs vLLM on CPU
        1.5-1.7x per token."""
        if self.scope is not None:  # one sample of a vote: sampled as the vote's are
            n = self.request.strategy.vote_size
        temperature = 0.0 if greedy or n == 1 else self.sample_temperature
        return Sampling(
            max_tokens=self.max_tokens,
            temperature=temperature,
            top_p=self.sample_top_p if temperature else 1.0,
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """One batched engine call; every token is counted in usage here, once.

        In one sample of a race (`scope`), each request gets an id the race can abort and
        a sampled one its seed; a stopped sample raises `SampleAborted`, after its
        aborted tokens are counted."""
        if not requests:
            return []
        scope = self.scope
        if scope is not None:
            if scope.aborted:
                raise SampleAborted
            requests = [self._scoped(request, scope) for request in requests]
        reserved: list[GenerationRequest] = []
        try:
            for request in requests:
                reserved.append(self.tally.reserve(request))
        except BudgetSpent:
            for request in reserved:
                self.tally.refund(request, 0)
            raise
        requests = reserved
        if self.context_tokens is not None and self.engine.tokenizer() is not None:
            for request in requests:
                prompt = len(render_prompt_ids(self.engine.tokenizer(), request))
                if prompt >= self.context_tokens:
                    raise PromptTooLongError(
                        f"A prompt of this job needs {prompt} tokens, and the model's context "
                        f"is {self.context_tokens}; shorten the problem or use fewer few-shot "
                        "examples."
                    )
        ids = {request.request_id for request in requests if request.request_id}
        if scope is not None:
            scope.in_flight |= ids
        spans = [self.span.engine_call(request) for request in requests]
        requests = [_traced(request, span) for request, span in zip(requests, spans, strict=True)]
        try:
            completions = await self.engine.generate(requests)
        except BaseException as exc:
            for request, span in zip(requests, spans, strict=True):
                self.tally.refund(request, 0)  # nothing returned: nothing to bill
                span.end(error=exc)
            raise
        finally:
            if scope is not None:
                scope.in_flight -= ids
        for span, completion in zip(spans, completions, strict=True):
            span.end_engine_call(completion)
        for request, completion in zip(requests, completions, strict=True):
            self.tally.refund(request, completion.completion_tokens)
        stage = len(self.trace)  # the event this stage will append when it ends
        for request, completion in zip(requests, completions, strict=True):
            self.sink.on_engine_call(EngineCall(stage, request, completion))
        self.usage.engine_calls += len(requests)
        for completion in completions:
            self.usage.prompt_tokens += completion.prompt_tokens
            self.usage.completion_tokens += completion.completion_tokens
        if scope is not None and scope.logprobs and completions:
            outputs = completions[-1].logprobs  # one sample: its one output's
            scope.last_logprobs = outputs[-1] if outputs else None
        if scope is not None and scope.aborted:
            scope.stopped_with.extend(str(r) for c in completions for r in c.finish_reasons)
            raise SampleAborted
        return completions

    def _scoped(self, request: GenerationRequest, scope: SampleScope) -> GenerationRequest:
        sampling = request.sampling
        if sampling.temperature > 0 and sampling.seed is None:
            sampling = replace(sampling, seed=scope.next_seed())
        if scope.logprobs:
            sampling = replace(sampling, logprobs=True)
        request_id = f"{self.seed}-{scope.calls}-{uuid.uuid4().hex[:8]}"
        return replace(request, sampling=sampling, request_id=request_id)

    async def generate_k(
        self,
        messages: list[dict[str, str]],
        role: str | None,
        samples: int,
        on_text: Any = None,
    ) -> list[Completion]:
        """K outputs of one prompt: the first greedy, the other K-1 from one request
        with `n=K-1`; both go to the engine in one batch, so prefix caching shares
        the prompt. `on_text` hears the greedy output as it is generated."""
        if self.scope is not None:  # one sample of a race: drawn as that sample
            sampling = self.sampling(1, greedy=self.greedy_draw)
            request = GenerationRequest(messages=messages, role=role, sampling=sampling)
            return await self.generate([request])
        requests = [
            GenerationRequest(
                messages=messages, role=role, sampling=self.sampling(1, greedy=True),
                on_text=on_text,
            )
        ]  # fmt: skip
        if samples > 1:
            requests.append(
                GenerationRequest(
                    messages=messages, role=role, sampling=self.sampling(samples), n=samples - 1
                )
            )
        return await self.generate(requests)

    def read(
        self, mode: Mode, text: str, *, format_asked: bool = True, generated: int | None = None
    ) -> Reading:
        """Split a think-mode output (TPO) by `hide_thought`'s rule and render an
        `answer_question` call. Hidden tokens move from completion to thought tokens.
        `format_asked`: the prompt asked for TPO's format, so a missing marker is a
        format break (generate.py counts and resamples those). `generated`: the
        engine's token count of `text`, when the caller has it."""
        thought, visible = None, text
        if mode == "think":
            markers = think_markers(self.request.strategy.think_prompt)
            split = hide_thought(text, markers, self.extract, format_asked=format_asked)
            thought, visible = split.thought, split.visible
            thought_tokens = split.thought_tokens(self.count_tokens, generated)
            self.usage.completion_tokens -= thought_tokens
            self.usage.thought_tokens += thought_tokens
        call = parse_function_call(visible)
        answer_text = answer_call_text(call) if call is not None else None
        return Reading(visible, answer_text or visible, thought, call)

    def count_tokens(self, text: str) -> int:
        """Exact with the engine's tokenizer; about 4 characters a token without one."""
        tokenizer = self.engine.tokenizer()
        if tokenizer is None:
            return len(text) // 4
        return len(tokenizer.encode(text, add_special_tokens=False))

    def fits(self, messages: list[dict[str, str]]) -> bool:
        """Whether a prompt still leaves `max_tokens` of room in the model's context.
        Without a tokenizer (an engine that does not expose one) the engine's own limit
        is the only check."""
        if self.context_tokens is None or self.engine.tokenizer() is None:
            return True
        request = GenerationRequest(messages=messages)
        prompt = len(render_prompt_ids(self.engine.tokenizer(), request))
        return prompt + self.max_tokens <= self.context_tokens

    def extract(self, text: str) -> str | None:
        return extract_answer(text, self.answer_type, self.request.options)

    def correct(self, answer: str | None) -> bool | None:
        """Correctness against the reference, or None when none is known."""
        if self.request.reference is None:
            return None
        return is_correct(answer, self.request.reference, self.answer_type, self.request.options)

    def candidate(
        self,
        mode: Mode,
        messages: list[dict[str, str]],
        output: str,
        *,
        first: bool = True,
        generated: int | None = None,
    ) -> Candidate:
        """A fresh candidate from one output of `messages` (`generated`: its engine
        token count, when known)."""
        reading = self.read(mode, output, format_asked=first, generated=generated)
        fresh = Candidate(
            mode, messages, reading.visible, reading.text, None, reading.thought, reading.call
        )
        fresh.answer = None if fresh.pending_call else self._answer(reading)
        return fresh

    def _answer(self, reading: Reading) -> str | None:
        """`answer_question`'s own `answer` first: a `\\boxed{}` inside its solving
        process is working, not the answer it gave. The rendered text is the fallback
        for a call whose `answer` is empty or unreadable."""
        call = reading.call
        if call is not None and call.is_answer:
            given = str(call.parameters.get("answer") or "").strip()
            if given:
                answer = self.extract(given)
                if answer is not None:
                    return answer
        return self.extract(reading.text)

    def revise(
        self, candidate: Candidate, messages: list[dict[str, str]], output: str
    ) -> Candidate:
        """The candidate after one more attempt, keeping its tool history."""
        # Refine prompts do not ask for TPO's format again: a thought in their output is
        # still hidden, but its absence is no format break.
        revised = self.candidate(candidate.mode, messages, output, first=False)
        revised.tool_calls, revised.decision = candidate.tool_calls, candidate.decision
        revised.greedy = candidate.greedy
        if candidate.thought is not None and revised.thought is None:
            revised.thought = candidate.thought
        return revised

    def note_tool(self, call: ToolCall) -> None:
        if call.tool not in self.tally.used_tools:
            self.tally.used_tools.append(call.tool)

    @asynccontextmanager
    async def stage(self, name: str, role: str | None) -> AsyncIterator[dict[str, Any]]:
        """Time a stage and append its trace event; the body fills the event's detail.

        Token counts are the usage this stage added, so the events sum to `usage`.
        """
        before = self.usage.model_copy()
        started = time.perf_counter()
        detail: dict[str, Any] = {}
        outer, self.span = self.span, self.span.stage(name, role)
        try:
            yield detail
        except (SampleAborted, BudgetSpent) as stopped:
            # A stopped stage's tokens still count: its event records them, so the
            # events sum to the usage however far the stage got.
            detail["aborted" if isinstance(stopped, SampleAborted) else "budget_spent"] = True
            await self._record_stage(name, role, before, started, detail)
            raise
        except BaseException as exc:
            self.span.end(error=exc)
            raise
        else:
            await self._record_stage(name, role, before, started, detail)
        finally:
            self.span = outer

    async def _record_stage(
        self, name: str, role: str | None, before: Usage, started: float, detail: dict[str, Any]
    ) -> None:
        duration = time.perf_counter() - started
        STAGE_DURATION.labels(stage=name).observe(duration)
        event = TraceEvent(
            stage=name,
            role=role or "base",
            prompt_tokens=self.usage.prompt_tokens - before.prompt_tokens,
            completion_tokens=self.usage.completion_tokens - before.completion_tokens,
            thought_tokens=self.usage.thought_tokens - before.thought_tokens,
            tool_tokens=self.usage.tool_tokens - before.tool_tokens,
            engine_calls=self.usage.engine_calls - before.engine_calls,
            duration_s=duration,
            detail=detail,
        )
        for kind, count in (
            ("visible", event.completion_tokens),
            ("thought", event.thought_tokens),
            ("tool", event.tool_tokens),
        ):
            SOLVE_TOKENS.labels(kind=kind).inc(count)
        self.trace.append(event)
        self.span.end_stage(event)
        await self.sink.on_stage(event)

    def thoughts_detail(self, candidates: Sequence[Candidate]) -> list[str | None] | None:
        """Thoughts for a trace event only when they may be revealed; None otherwise."""
        if not self.reveal or all(c.thought is None for c in candidates):
            return None
        return [c.thought for c in candidates]


def _traced(request: GenerationRequest, span: TraceSpan) -> GenerationRequest:
    """The request carrying its engine-call span's trace context (vLLM's trace_headers)."""
    headers = span.headers()
    return replace(request, trace_headers=headers) if headers else request
