"""Wire models of the public contract (DESIGN §2). Only pydantic models live here.

Every request model forbids unknown fields, so a typo in a client surfaces as a 422
naming the field instead of being silently ignored.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from contract.errors import Outcome

MAX_PROBLEM_CHARS = 20_000
MAX_SAMPLES = 64
MAX_ATTEMPTS = 4
# The tool servers (tool_servers/registry.py builds exactly these).
TOOL_SERVER_NAMES = ("python", "pde", "mechanics", "climate", "epidemiology")
MAX_TIMEOUT_S = 3600.0  # the longest deadline a request may ask for
MIN_TIMEOUT_S = 1.0  # shorter cannot even reach a worker; it would only ever be a 504


def _integral_number(value: Any) -> Any:
    """JSON Schema counts 60.0 as an integer; strict pydantic would not. Only a float
    with no fraction becomes an int: strings and fractions still fail strictly."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field of a request: strict, except for JSON's integral floats.
Int = Annotated[int, BeforeValidator(_integral_number)]


class Strict(BaseModel):
    """Base for request models: unknown fields are an error, not a silent no-op, and
    types are strict: `"10"` is not a number and `"yes"` or `0` is not a boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)


# PEARL: steps a plan may execute before its answer; more are dropped.
PLAN_MAX_STEPS = 6
# strategy.auto: the escalation's samples when the request sets no `samples` above 1.
AUTO_SAMPLES = 5


class ConfidenceStop(Strict):
    """Stop a vote once the posterior probability that the current leader is the
    majority answer of all K samples reaches `confidence` (Adaptive-Consistency,
    Aggarwal et al. 2023: a Dirichlet over the answers seen)."""

    confidence: float = Field(ge=0.5, lt=1.0)


StopRule = Literal["settled", "none"] | ConfidenceStop
# How the generate stage answers, and every stage a strategy may run (Strategy.stage_plan).
GenerateKind = Literal["client_tools", "plan", "direct", "think", "awl", "adaptive"]
StageKind = Literal[
    "few_shot", "client_tools", "plan", "direct", "think", "awl", "adaptive", "selfcorrect",
    "art", "select",
]  # fmt: skip


class Strategy(Strict):
    """How the worker spends inference-time compute on one problem."""

    tools: Literal["auto", "never", "always"] = "auto"
    think: bool = False
    attempts: Int = Field(default=1, ge=1, le=MAX_ATTEMPTS)
    samples: Int = Field(default=1, ge=1, le=MAX_SAMPLES)
    art: bool = False
    few_shot: Int = Field(default=0, ge=0, le=16)
    think_prompt: Literal["generic", "specific"] = Field(
        default="generic",
        description="TPO's thought prompt: generic (thoughts, then the response) or specific "
        "(a draft response and its evaluation, then the final response).",
    )
    prompt_style: Literal["sciserve", "awl"] | None = Field(
        default=None,
        description="Layout of the adaptive prompt: 'awl' is AWL's own (system turn per domain, "
        "'Question: … Options: …', the domain's tools only, 'Feedback from' turns), "
        "'sciserve' the original one; unset: the worker's SCISERVE_PROMPT_STYLE.",
    )
    plan: bool = Field(
        default=False,
        description="PEARL: plan over a fixed action set (find, compute, derive, compare, "
        "answer), carry out each step with earlier results fed forward, then answer.",
    )
    domain: Literal["mechanics", "pde", "climate", "epidemiology", "math"] | None = Field(
        default=None,
        description="The question's domain for the 'awl' prompt style (its system turn, tools "
        "and message limit); unset: classified from the problem.",
    )

    stop: StopRule = Field(
        default="settled",
        description="When a vote of `samples` stops generating. 'settled' (lossless): as soon "
        "as no answers of the unfinished samples could change the winner, so the answer is "
        "the full vote's; {'confidence': p}: once the posterior probability that the leader "
        "is the full vote's winner reaches p (Adaptive-Consistency); 'none': every sample "
        "runs to its end. Stopped samples are aborted in the engine; their tokens are billed.",
    )
    auto: bool = Field(
        default=False,
        description="Spend compute only where it can change the answer: the greedy answer "
        "first, returned at once when its confidence (token log probabilities) passes the "
        "served policy's threshold (SCISERVE_AUTO_POLICY); otherwise it escalates to an "
        "early-stopped vote of `samples` (5 when unset). Combines with attempts, art, think "
        'and tools. `"strategy": "auto"` is short for {"auto": true}.',
    )
    window: Int | None = Field(
        default=None,
        ge=1,
        le=MAX_SAMPLES,
        description="Samples of a vote in flight at once (each finished one starts the next); "
        "unset: all of them with stop 'none', else the smallest majority of `samples`, which "
        "alone can settle a vote.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Strategy:
        if self.think and self.tools == "always":
            raise ValueError(
                "think (TPO) generates without tools, so it cannot be combined with "
                "tools='always'; use tools='never' or 'auto' with think."
            )
        if self.plan and self.think:
            raise ValueError(
                "plan (PEARL) and think (TPO) are two ways to generate; choose one of them."
            )
        return self

    def generate_kind(
        self, *, client_tools: bool = False, prompt_style: str = "sciserve"
    ) -> GenerateKind:
        """How the generate stage answers: client functions when the job carries them
        (or tool-call turns), PEARL, direct or TPO without tools, AWL's own layout
        (`prompt_style` is the worker's default; the request's wins), else adaptive."""
        if client_tools:
            return "client_tools"
        if self.plan:
            return "plan"
        if self.tools == "never":
            return "think" if self.think else "direct"
        if (self.prompt_style or prompt_style) == "awl" and not self.think:
            return "awl"
        return "adaptive"

    def stage_plan(
        self, *, client_tools: bool = False, prompt_style: str = "sciserve"
    ) -> tuple[StageKind, ...]:
        """The stages this strategy runs, in order (DESIGN §4): the one rule the worker
        composes its pipeline from and the cost estimates below count."""
        stages: list[StageKind] = ["few_shot"] if self.few_shot else []
        stages.append(self.generate_kind(client_tools=client_tools, prompt_style=prompt_style))
        if self.attempts > 1:
            stages.append("selfcorrect")
        if self.art:
            stages.append("art")
        stages.append("select")
        return tuple(stages)

    @property
    def vote_size(self) -> int:
        """The samples a vote may run: `samples`, or under `auto` its escalation cap
        (`samples`, else `AUTO_SAMPLES`)."""
        if self.auto and self.samples == 1:
            return AUTO_SAMPLES
        return self.samples

    @property
    def name(self) -> str:
        """A bounded label for metrics, never free text: the most specific strategy."""
        if self.auto:
            return "auto"
        if self.art:
            return "art"
        if self.think:
            return "think"
        if self.plan:
            return "plan"
        if self.samples > 1:
            return "vote"
        if self.attempts > 1:
            return "selfcorrect"
        return "direct" if self.tools == "never" else "adaptive"

    @property
    def single_output(self) -> bool:
        """The generate stage's one output is the answer unchanged: one sample and no
        refine stage (what streams token by token, and what can end in `length`)."""
        return self.vote_size == 1 and self.attempts == 1 and not self.art

    @property
    def serves_client_functions(self) -> bool:
        """Client functions are one generation the client continues: only a direct or
        adaptive answer (tools not 'always') can be one."""
        return self.name in ("direct", "adaptive") and self.tools != "always"

    def expected_engine_sequences(self) -> int:
        """Engine sequences this strategy implies at least: the work a queued job stands
        for, so autoscaling sees that `samples: 8` is eight times a direct answer.

        One per sample for generate (one request with n=K is still K decodes), one per
        sample for each SCoRe round after the first, one per sample for each ART stage
        (ask, refine, trust), one more per sample with `tools: always` (the answer
        after the first tool result), and one more per sample with `plan` (the plan, then
        the answer). A lower bound: `tools: auto` may call tools, and a plan runs up to
        six steps in between.
        """
        per_sample = 0
        for stage in self.stage_plan():
            if stage in ("plan", "direct", "think", "awl", "adaptive", "client_tools"):
                per_sample += 1 + (stage == "plan") + (self.tools == "always")
            elif stage == "selfcorrect":
                per_sample += self.attempts - 1
            elif stage == "art":
                per_sample += 3
        return (1 if self.auto else self.samples) * per_sample  # auto: the greedy one at least

    def worst_case_generations(self, max_tool_calls: int) -> int:
        """Engine generations this strategy may make at most, each up to `max_tokens`:
        what a job is charged and capped by (the honest counterpart of
        `expected_engine_sequences`, which is a lower bound for autoscaling).

        Per sample: the generate stage (a direct answer 1, TPO 2 with its resample of a
        broken format, a tool loop `max_tool_calls + 1` turns, a PEARL plan the plan, up
        to `PLAN_MAX_STEPS` steps and the answer), one per SCoRe round after the first,
        and ART's three calls (ask, refine, trust).
        """
        per_sample = 0
        for stage in self.stage_plan():
            if stage == "plan":
                per_sample += PLAN_MAX_STEPS + 2
            elif stage in ("direct", "think"):
                per_sample += 2 if stage == "think" else 1
            elif stage in ("awl", "adaptive", "client_tools"):
                per_sample += max_tool_calls + 1 + (1 if self.think else 0)
            elif stage == "selfcorrect":
                per_sample += self.attempts - 1
            elif stage == "art":
                per_sample += 3
        return self.vote_size * per_sample

    def worst_case_tool_calls(self, max_tool_calls: int) -> int:
        """Tool (sandbox) runs this strategy may start at most: each sample's tool loop,
        or each PEARL step; the worker also caps a job's runs (`max_job_tool_calls`)."""
        if self.tools == "never":
            return 0
        per_sample = PLAN_MAX_STEPS if self.plan else max_tool_calls
        return self.vote_size * per_sample


def _auto_shorthand(value: Any) -> Any:
    """`"strategy": "auto"` is `{"auto": true}`; any other string stays an error."""
    return {"auto": True} if value == "auto" else value


# A strategy object, or the string "auto" for {"auto": true}.
StrategyField = Annotated[Strategy, BeforeValidator(_auto_shorthand)]

AnswerType = Literal["auto", "number", "choice", "expression", "text"]


MAX_CLIENT_FUNCTIONS = 128


class ClientFunction(Strict):
    """A function the client runs itself (OpenAI's `tools`): the policy may answer with
    a call to it, which the job returns instead of an answer; the client runs it and
    sends the result back as a `tool` turn."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = Field(default=None, max_length=MAX_PROBLEM_CHARS)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="The arguments' JSON schema.",
    )


class ClientToolCall(Strict):
    """One call of a client function: OpenAI's tool call, `arguments` a JSON object's text."""

    id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(max_length=MAX_PROBLEM_CHARS)


class NamedClientFunction(Strict):
    """`client_tool_choice` naming the one function the policy must call."""

    name: str = Field(min_length=1, max_length=64)


ClientToolChoice = Literal["none", "auto", "required"] | NamedClientFunction


AdapterRole = Literal["policy", "asker", "truster"]
# In a request's `adapters`, the base model itself (no adapter) for that role, so an
# evaluation can compare a trained adapter with the model it was trained from.
BASE_ADAPTER = "base"
AdapterName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="A loaded adapter's name: letters, digits, '.', '_' or '-', at most 64.",
    ),
]


class ChatTurn(Strict):
    """One earlier turn of a conversation (the OpenAI-compatible API's history): a user
    or assistant message, an assistant's calls of client functions, or a function's
    result (`tool`, answering `tool_call_id`)."""

    role: Literal["user", "assistant", "tool"]
    content: str = Field(max_length=MAX_PROBLEM_CHARS)
    tool_calls: list[ClientToolCall] | None = Field(default=None, max_length=64)
    tool_call_id: str | None = Field(default=None, max_length=256)


class SolveRequest(Strict):
    """`POST /solve` and `POST /jobs` body."""

    problem: str = Field(min_length=1, max_length=MAX_PROBLEM_CHARS)
    options: list[str] | None = Field(default=None, min_length=2, max_length=26)
    answer_type: AnswerType = "auto"
    strategy: StrategyField = Field(default_factory=Strategy)
    tools: list[str] | None = None
    reference: str | None = Field(default=None, max_length=MAX_PROBLEM_CHARS)
    max_tokens: Int | None = Field(default=None, ge=1, le=32_768)
    budget_tokens: Int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Generated plus thought tokens the whole job may spend, for any strategy: "
        "each engine call's max_tokens is capped to what remains, so it is never exceeded. "
        "Must fit one answer of max_tokens. Stages that no longer fit are skipped.",
    )
    seed: Int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Sampling seed: sample i of a vote draws with seed + i, so two requests "
        "with one seed draw the same samples; unset: derived from the job id.",
    )
    timeout_s: float | None = Field(default=None, ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S)
    return_trace: bool = False
    reveal_thoughts: bool = False
    system: str | None = Field(
        default=None,
        max_length=MAX_PROBLEM_CHARS,
        description="Extra instructions, sent as a system message before the policy's prompts.",
    )
    history: list[ChatTurn] | None = Field(
        default=None,
        max_length=64,
        description="Earlier turns of a conversation, kept in the policy's prompt before the "
        "problem.",
    )
    stream: bool = Field(
        default=False,
        description="Publish the final answer's text as `delta` events while it is generated, "
        "when the strategy makes it the final answer (one sample of direct or think).",
    )
    client_tools: list[ClientFunction] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CLIENT_FUNCTIONS,
        description="Functions the client runs itself: the policy sees them and may answer "
        "with calls to them (`SolveResult.tool_calls`). One sample, no refine stage, no "
        "tool servers.",
    )
    adapters: dict[AdapterRole, AdapterName] | None = Field(
        default=None,
        description="Which loaded adapter plays a role for this request, e.g. "
        '{"policy": "policy-v2"}, so two trained policies can be compared live; roles '
        "not named use their own adapter (or the base model). A name the worker has not "
        "loaded is a 422 naming it.",
    )
    client_tool_choice: ClientToolChoice = Field(
        default="auto",
        description="'none': the functions are not shown; 'auto': the policy decides; "
        "'required': it must call one; a name: it must call that one.",
    )
    parallel_tool_calls: bool = Field(
        default=True, description="Whether one answer may call several client functions."
    )
    continuation: list[ChatTurn] | None = Field(
        default=None,
        max_length=64,
        description="Turns after the problem, e.g. the policy's function calls and their "
        "results: the policy continues from them.",
    )

    @field_validator("problem")
    @classmethod
    def _not_blank(cls, problem: str) -> str:
        if not problem.strip():
            raise ValueError("the problem is blank; send the question's text.")
        return problem

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: list[str] | None) -> list[str] | None:
        """Tool servers by name; a typo must not silently mean "no tools"."""
        if tools is None:
            return None
        unknown = [name for name in tools if name not in TOOL_SERVER_NAMES]
        if unknown:
            raise ValueError(
                f"unknown tool server(s) {', '.join(map(repr, unknown))}; the tool servers "
                f"are {', '.join(TOOL_SERVER_NAMES)}."
            )
        return list(dict.fromkeys(tools))

    @model_validator(mode="after")
    def _client_functions(self) -> SolveRequest:
        """Client functions are one generation the client continues: a choice must name
        a function that is there, and strategies that sample or revise are refused."""
        names = [function.name for function in self.client_tools or ()]
        if len(set(names)) < len(names):
            raise ValueError("client_tools: two functions have the same name.")
        choice = self.client_tool_choice
        if isinstance(choice, NamedClientFunction) and choice.name not in names:
            raise ValueError(
                f"client_tool_choice names the function {choice.name!r}, which is not one of "
                f"client_tools ({', '.join(names) or 'none sent'})."
            )
        if choice == "required" and not names:
            raise ValueError("client_tool_choice 'required' needs client_tools.")
        if names or self.continuation:
            strategy = self.strategy
            if not strategy.serves_client_functions:
                raise ValueError(
                    "client functions and tool-call turns are served with one sample and no "
                    "refine stage (strategy direct or adaptive, tools not 'always'), not "
                    f"with strategy {strategy.name!r}."
                )
            if self.tools:
                raise ValueError(
                    "tool servers (tools) and client functions (client_tools) are not combined "
                    "in one job."
                )
        return self

    @model_validator(mode="after")
    def _budget_fits_an_answer(self) -> SolveRequest:
        if (
            self.budget_tokens is not None
            and self.max_tokens is not None
            and self.budget_tokens < self.max_tokens
        ):
            raise ValueError(
                f"budget_tokens={self.budget_tokens} cannot fit one answer of "
                f"max_tokens={self.max_tokens}; raise budget_tokens or lower max_tokens."
            )
        return self

    def max_tokens_or(self, default: int) -> int:
        """Each generation's `max_tokens`: the request's, else the server's default (the
        one rule the budget and the worker share)."""
        return self.max_tokens or default

    def timeout_or(self, default: float) -> float:
        """The job's time from submit to its deadline: `timeout_s`, else the server's
        default (the one rule the queue's deadline and the gateway's wait share)."""
        return self.timeout_s or default

    def adapter_names(self) -> set[str]:
        """The adapters this job runs on, by engine name: the policy always, the Asker
        and the Truster under ART; each the one `adapters` chose, else the role's own.
        A worker that failed to load one of them leaves the job to the rest of the pool."""
        roles: tuple[str, ...] = get_args(AdapterRole) if self.strategy.art else ("policy",)
        chosen = self.chosen_adapters()
        return {chosen.get(role, role) for role in roles} - {BASE_ADAPTER}

    def chosen_adapters(self) -> dict[str, str]:
        """`adapters` keyed by plain role names: role → the adapter name it chose."""
        return {str(role): name for role, name in (self.adapters or {}).items()}


class Usage(BaseModel):
    """Token accounting; hidden-thought and tool tokens are counted apart (DESIGN §2)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    thought_tokens: int = 0
    tool_tokens: int = 0
    engine_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.thought_tokens

    def add(self, other: Usage) -> None:
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Timings(BaseModel):
    """Seconds spent waiting in the queue, running, and end to end."""

    queue_s: float = 0.0
    run_s: float = 0.0
    total_s: float = 0.0


class TraceEvent(BaseModel):
    """One stage's record; stages append these in order. Token counts are what the
    stage added to `usage`; `detail` holds answers, decisions and tool calls, and
    thoughts only when they may be revealed. Frozen: a stage builds its event once, when
    it ends, and nothing changes it after it is published."""

    model_config = ConfigDict(frozen=True)

    stage: str
    role: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    thought_tokens: int = 0
    tool_tokens: int = 0
    engine_calls: int = 0
    duration_s: float = 0.0
    detail: dict[str, Any] = Field(default_factory=dict)


class SolveResult(BaseModel):
    """`POST /solve` response and the `result` of a finished job."""

    id: str
    answer: str | None
    answer_text: str
    correct: bool | None = None
    initial_answer: str | None = Field(
        default=None, description="The answer before any refine stage (SCoRe's attempt 1)."
    )
    thoughts: str | None = Field(
        default=None, description="Hidden thoughts; only with reveal_thoughts and its scope."
    )
    used_tools: list[str] = Field(default_factory=list)
    tool_calls: list[ClientToolCall] | None = Field(
        default=None,
        description="The policy's calls of client functions, when it answered with them; "
        "the client runs them and continues the conversation.",
    )
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    trace: tuple[TraceEvent, ...] | None = None


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class JobStatus(BaseModel):
    """`GET /jobs/{id}` response."""

    id: str
    status: JobState
    result: SolveResult | None = None
    error: str | None = None
    error_code: Outcome | None = Field(
        default=None, description="Why a failed job failed (one of a closed set)."
    )


class JobAccepted(BaseModel):
    """`POST /jobs` 202 response."""

    id: str


class AdapterLoad(Strict):
    """`POST /admin/adapters` body: put an adapter behind a role at runtime."""

    role: AdapterRole
    name: AdapterName | None = Field(
        default=None,
        description="Load it under this name beside the role's own adapter instead of "
        "replacing it; requests choose it with `adapters: {role: name}`. Omitted: the "
        "role's own adapter (named after the role).",
    )
    path: str = Field(min_length=1)
    base_model: str = Field(min_length=1)
    rank: Int = Field(ge=1)

    @property
    def key(self) -> str:
        """The adapter's name in the engine: the one given, else the role's own."""
        return self.name or self.role

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str | None) -> str | None:
        if name == BASE_ADAPTER:
            raise ValueError(
                f"the name {BASE_ADAPTER!r} is reserved: in a request's adapters it means the "
                "base model without an adapter"
            )
        return name

    @field_validator("path")
    @classmethod
    def _expand_home(cls, path: str) -> str:
        """Expand `~` here, so an unknown user's home or a NUL byte is the caller's 422,
        not an error deep in the worker."""
        if "\x00" in path:
            raise ValueError("the path must not contain a NUL byte")
        try:
            return str(Path(path).expanduser())
        except RuntimeError as exc:  # `~name` of a user this machine does not know
            raise ValueError(f"cannot expand {path.split('/', 1)[0]!r}: {exc}") from exc


class WorkerAdapterState(BaseModel):
    """One worker's state of one role, as it reported it to the pool."""

    worker: str
    loaded: bool
    path: str | None = None
    rank: int | None = None
    error: str | None = Field(default=None, description="Why the last load failed.")


class AdapterInfo(BaseModel):
    """A role's adapter. On a worker (or the embedded service): its engine's state. On
    a gateway over a pool: the pool's desired adapter, `loaded` when every live worker
    has it, and each worker's state under `workers`."""

    role: str
    path: str | None
    rank: int | None
    loaded: bool
    error: str | None = None
    workers: list[WorkerAdapterState] | None = None
    name: str | None = Field(
        default=None, description="The adapter's name: the role's own, or a named one."
    )


class WorkerAdapterReport(BaseModel):
    """What a worker publishes about its adapters: the pool version it has applied and
    the state of every role."""

    worker: str
    version: int
    reported_at: float
    roles: dict[str, WorkerAdapterState] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: one readable sentence plus, for 422, where it went wrong."""

    detail: str
    errors: list[dict[str, Any]] | None = None


class JobListItem(BaseModel):
    """One job in `GET /ui/api/jobs`, the caller's recent jobs."""

    id: str
    status: JobState
    strategy: str = Field(description="The strategy's name (direct, adaptive, vote, …).")
    problem: str = Field(description="The problem's first 200 characters.")
    submitted_at: float = Field(description="Unix time.")
    key_name: str | None = Field(default=None, description="The name of the key that sent it.")
    total_tokens: int | None = None
    duration_s: float | None = Field(default=None, description="Submit to finish, when done.")
    answer: str | None = None
    error_code: Outcome | None = None


class JobList(BaseModel):
    """`GET /ui/api/jobs`: the caller's jobs still kept, newest first."""

    viewer: str = Field(description="The caller's key name ('anonymous' with keys off).")
    jobs: list[JobListItem]


class JobTrace(BaseModel):
    """`GET /ui/api/jobs/{id}`: one job for its trace page. `events` are the job's
    events so far as `GET /jobs/{id}/events` streams them: `stage` events carry each
    stage's detail (answers, votes, tool calls, decisions) and its engine calls, bounded;
    thoughts only when the reader may see them."""

    id: str
    status: JobState
    key_name: str | None = None
    submitted_at: float
    request: SolveRequest
    strategy: str
    result: SolveResult | None = None
    error: str | None = None
    error_code: Outcome | None = None
    thoughts_visible: bool = Field(
        description="Whether thoughts are shown: the request revealed them and the reader "
        "holds the reveal_thoughts scope."
    )
    events: list[dict[str, Any]]
