"""The solve pipeline: compose stages from `SolveRequest.strategy` and run them on one
engine (DESIGN §4: generate → refine → select; §3: every stage of a job on the same
engine).

Composition, in order:
- `few_shot > 0`: retrieve examples (they prefix every generate prompt);
- generate, one mode: `plan` → PEARL (plan, steps, answer); else `tools: never` →
  direct (`think`: TPO), `auto` → adaptive (AWL decision; `think`: inside TPO's
  prompt; prompt style `awl`: AWL's own layout), `always` → adaptive with a tool
  required; client functions or tool-call turns in the request → one output that may
  call the client's functions (workers/strategies/client_tools.py);
- refine: SCoRe for `attempts - 1` rounds, then ART if `art`;
- select: a vote when `samples > 1` (the Truster breaks ties when `art`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contract.answers import equivalent, resolve_type
from contract.errors import AdapterError, BudgetExceededError, InvalidStrategyError
from contract.schemas import BASE_ADAPTER, SolveRequest, SolveResult, Strategy
from contract.settings import Settings
from contract.telemetry import OFF, Telemetry
from workers.engines.base import Engine
from workers.engines.factory import served_layout
from workers.job_sink import NO_SINK, JobSink
from workers.strategies.art import AskRefineTrust
from workers.strategies.awl import AwlGenerate, confident_domain
from workers.strategies.client_tools import ClientToolGenerate
from workers.strategies.confidence import AutoPolicy
from workers.strategies.context import (
    BudgetSpent,
    Candidate,
    JobTally,
    SolveContext,
    Stage,
    run_stages,
)
from workers.strategies.few_shot import ExampleBank, FewShot, build_bank
from workers.strategies.generate import AdaptiveGenerate, PromptGenerate
from workers.strategies.plan import PlanGenerate
from workers.strategies.sample_race import race
from workers.strategies.select import Select, elect
from workers.strategies.selfcorrect import SelfCorrect
from workers.tools.client import ToolClient

ART_ROLES = ("asker", "truster")


@dataclass
class PipelineOptions:
    """Worker-wide knobs (from Settings) that strategies read."""

    default_max_tokens: int = Settings.model_fields["default_max_tokens"].default
    context_tokens: int | None = None  # the model's context; None: unbounded (test doubles)
    sample_temperature: float = 0.7
    sample_top_p: float = 1.0
    prompt_style: Literal["sciserve", "awl"] = "sciserve"
    awl_domains: frozenset[str] = frozenset()  # served in AWL's layout whatever the default
    max_tool_calls: int = 4
    max_job_tool_calls: int | None = None
    role_fallback: bool = True
    few_shot_bank: Path | None = None
    few_shot_retrieval: Literal["bm25", "minilm"] = "bm25"
    auto_policy: AutoPolicy = field(default_factory=AutoPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineOptions:
        layout = served_layout(settings)
        return cls(
            default_max_tokens=settings.default_max_tokens,
            context_tokens=settings.max_model_len,
            sample_temperature=settings.sample_temperature,
            sample_top_p=settings.sample_top_p,
            prompt_style=layout.default,
            awl_domains=layout.awl_domains,
            max_tool_calls=settings.max_tool_calls,
            max_job_tool_calls=settings.max_job_tool_calls,
            role_fallback=settings.role_fallback,
            few_shot_bank=settings.few_shot_bank,
            few_shot_retrieval=settings.few_shot_retrieval,
            auto_policy=AutoPolicy.load(
                settings.auto_policy, settings.demo_model if settings.model is None else None
            ),
        )

    def prompt_style_for(self, request: SolveRequest) -> Literal["sciserve", "awl"]:
        """The layout this request is served in: its own `prompt_style`; else AWL's
        when its domain (named, or confidently read from its words) is one the served
        policy was trained on in that layout; else the served default."""
        strategy = request.strategy
        if strategy.prompt_style is not None:
            return strategy.prompt_style
        if self.awl_domains:
            domain = strategy.domain or confident_domain(request.problem)
            if domain in self.awl_domains:
                return "awl"
        return self.prompt_style


def compose(
    strategy: Strategy,
    bank: ExampleBank | None,
    prompt_style: str = "sciserve",
    client_tools: bool = False,
) -> list[Stage]:
    """The stage objects of `Strategy.stage_plan`, in its order. `prompt_style` is the
    worker's default layout of the adaptive prompt; the request's wins. `client_tools`:
    the job carries client functions or tool-call turns, so generate is one output
    that may call them (the request model allows only direct or adaptive then)."""
    required = strategy.tools == "always"
    stages: list[Stage] = []
    for kind in strategy.stage_plan(client_tools=client_tools, prompt_style=prompt_style):
        match kind:
            case "few_shot":
                assert bank is not None
                stages.append(FewShot(bank))
            case "client_tools":
                stages.append(ClientToolGenerate())
            case "plan":
                stages.append(PlanGenerate(tools=strategy.tools != "never"))
            case "direct" | "think":
                stages.append(PromptGenerate(kind))
            case "awl":
                stages.append(AwlGenerate(required=required))
            case "adaptive":
                stages.append(AdaptiveGenerate(required=required, think=strategy.think))
            case "selfcorrect":
                stages.append(SelfCorrect(strategy.attempts - 1))
            case "art":
                stages.append(AskRefineTrust())
            case "select":
                stages.append(Select(truster_breaks_ties=strategy.art))
    return stages


class SolvePipeline:
    """Runs every stage of one job on the same engine (DESIGN §3)."""

    def __init__(
        self,
        engine: Engine,
        options: PipelineOptions | None = None,
        tools: ToolClient | None = None,
        telemetry: Telemetry = OFF,
    ):
        self.engine = engine
        self.options = options or PipelineOptions()
        self.tools = tools
        self.telemetry = telemetry  # the worker's traces (workers/job_spans.py); off by default
        self._bank: ExampleBank | None = None

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        settings: Settings,
        tools_mounted: bool = False,
        telemetry: Telemetry = OFF,
    ) -> SolvePipeline:
        """Tools are the configured servers, or the ones this process mounts (the
        embedded default); a worker with neither answers without tools."""
        has_tools = bool(settings.tool_urls) or tools_mounted
        tools = ToolClient.from_settings(settings) if has_tools else None
        return cls(engine, PipelineOptions.from_settings(settings), tools, telemetry)

    async def aclose(self) -> None:
        if self.tools is not None:
            await self.tools.aclose()

    @property
    def bank(self) -> ExampleBank:
        if self._bank is None:
            self._bank = build_bank(self.options.few_shot_bank, self.options.few_shot_retrieval)
        return self._bank

    def check(self, request: SolveRequest) -> None:
        """Checks only the worker can make: they need its engine's adapters."""
        chosen = set(request.chosen_adapters().values()) - {BASE_ADAPTER}
        unknown = sorted(chosen - set(self.engine.adapters()))
        if unknown:
            loaded = ", ".join(sorted(self.engine.adapters())) or "none"
            raise AdapterError(
                f"adapters names {', '.join(map(repr, unknown))}, which this worker has not "
                f"loaded (loaded: {loaded}); load it with POST /admin/adapters and a 'name'."
            )
        if request.strategy.art and not self.options.role_fallback:
            missing = [role for role in ART_ROLES if role not in self.engine.adapters()]
            if missing:
                raise InvalidStrategyError(
                    f"strategy.art needs the {' and '.join(missing)} adapter role(s), which this "
                    "worker does not serve, and role fallback to the base model is off "
                    "(SCISERVE_ROLE_FALLBACK=false)."
                )

    async def solve(
        self,
        job_id: str,
        request: SolveRequest,
        sink: JobSink = NO_SINK,
        deadline: float | None = None,
    ) -> SolveResult:
        """Run the stages; `sink` hears each stage's event, answer delta and engine
        call as it happens (workers/job_sink.py). The
        caller enforces `deadline` (Unix time) on the whole run; tool calls read it
        to cap their own timeouts."""
        self.check(request)
        ctx = SolveContext(
            request=request,
            answer_type=resolve_type(request.answer_type, request.options, request.reference),
            engine=self.engine,
            max_tokens=request.max_tokens_or(self.options.default_max_tokens),
            context_tokens=self.options.context_tokens,
            sample_temperature=self.options.sample_temperature,
            sample_top_p=self.options.sample_top_p,
            seed=job_id,
            tools=self.tools,
            max_tool_calls=self.options.max_tool_calls,
            max_job_tool_calls=self.options.max_job_tool_calls,
            sink=sink,
            deadline=deadline,
            tally=JobTally(budget_left=request.budget_tokens),
            auto_policy=self.options.auto_policy,
            span=sink.span,
        )
        stages = compose(
            request.strategy,
            self.bank if request.strategy.few_shot else None,
            self.options.prompt_style_for(request),
            client_tools=bool(request.client_tools or request.continuation),
        )
        candidates: list[Candidate] = []
        initial: list[str | None] | None = None
        greedy_first = True  # the first initial answer is the greedy sample's
        try:
            if request.strategy.vote_size > 1:  # each sample its own pipeline, until decided
                for prepare in (s for s in stages if isinstance(s, FewShot)):
                    candidates = await prepare.run(ctx, candidates)
                per_sample = [s for s in stages[:-1] if not isinstance(s, FewShot)]
                candidates, initial, report = await race(ctx, per_sample)
                ctx.vote_stop = report.detail()
                if not candidates:  # no sample reached an answer within the budget
                    raise BudgetSpent
                greedy_first = bool(candidates) and candidates[0].greedy
                stages = stages[-1:]
            run = await run_stages(ctx, stages, candidates)
        except BudgetSpent as exc:
            raise BudgetExceededError(
                f"budget_tokens={request.budget_tokens} was spent before any answer was "
                "generated; raise it."
            ) from exc
        candidates = run.candidates
        if initial is None:
            initial = run.initial
        [final] = candidates
        first = initial or [final.answer]  # greedy first, as generate made them
        election = elect(
            first, 0 if greedy_first else None, lambda a, b: equivalent(a, b, ctx.answer_type)
        )
        return SolveResult(
            id=job_id,
            answer=final.answer,
            answer_text=final.text,
            correct=ctx.correct(final.answer),
            initial_answer=(
                first[election.index]
                if election.index is not None
                else (election.leaders[0] if election.leaders else None)
            ),
            used_tools=ctx.used_tools,
            tool_calls=final.client_calls or None,
            usage=ctx.usage,
            thoughts=final.thought if ctx.reveal else None,
            trace=tuple(ctx.trace) if request.return_trace else None,
        )
