"""The `Engine` protocol and the plain data that crosses it (DESIGN §3).

Requests carry the adapter's name (`GenerationRequest.role`): a role's own adapter is
named after the role, other loaded adapters by their own names (a request's choice,
`SolveRequest.adapters`). The engine maps names to whatever its backend calls them,
and a name with no adapter runs on the base model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from adapters.registry import ROLES, AdapterSpec
from contract.errors import AdapterError
from workers.metrics import ADAPTER_LOADED, ENGINE_CALLS, ENGINE_TOKENS


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; temperature 0 means greedy."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Return each generated token's log probability (`Completion.logprobs`): what
    # `strategy.auto` reads an answer's confidence from.
    logprobs: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (chat `messages` or raw `prompt`) for `n` samples under a role."""

    messages: Sequence[dict[str, str]] | None = None
    prompt: str | None = None
    role: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    n: int = 1
    # Streaming: an engine that can stream calls this with each new piece of text of
    # a one-sample request while it generates; the Completion still carries the whole
    # text. Engines that cannot stream ignore it.
    on_text: Callable[[str], Awaitable[None]] | None = field(default=None, compare=False)
    # Client functions (OpenAI tool specs) for the chat template's `tools`; templates
    # without tool support ignore them.
    tools: Sequence[Mapping[str, Any]] | None = field(default=None, compare=False)
    # Structured outputs: the text must be JSON of this schema. Engines that cannot
    # force it (no `supports_json_schema`) ignore it; the caller checks the text.
    json_schema: Mapping[str, Any] | None = field(default=None, compare=False)
    # The engine's id of this request, so an `AbortableEngine` can stop it (a vote
    # that settled); None: the engine makes one.
    request_id: str | None = field(default=None, compare=False)
    # The W3C trace context of the engine-call span this request runs under (vLLM's
    # `trace_headers`: its own request span joins the job's trace); None: traces off.
    trace_headers: Mapping[str, str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("A generation request needs exactly one of messages or prompt.")
        if self.n < 1:
            raise ValueError("n must be at least 1.")


@dataclass(frozen=True)
class Completion:
    """The `n` outputs of one request, with exact token counts from the engine."""

    texts: list[str]
    token_ids: list[list[int]]
    prompt_tokens: int
    finish_reasons: list[str | None]
    # Per output, the log probability of each generated token, when asked for
    # (`Sampling.logprobs`); None otherwise.
    logprobs: list[list[float]] | None = None

    @property
    def completion_tokens(self) -> int:
        return sum(len(ids) for ids in self.token_ids)


@runtime_checkable
class Engine(Protocol):
    """What the solve pipeline needs from a model server."""

    model_name: str

    async def start(self) -> None: ...

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Run a batch; the engine may batch it with other callers' requests."""
        ...

    async def load_adapter(self, spec: AdapterSpec) -> None: ...

    async def unload_adapter(self, name: str) -> None: ...

    def adapters(self) -> dict[str, AdapterSpec]: ...

    async def health(self) -> bool: ...

    def tokenizer(self) -> Any: ...

    async def close(self) -> None: ...


@runtime_checkable
class AbortableEngine(Protocol):
    """An engine that can stop requests by id and still return what they generated: the
    aborted request's `generate` returns its tokens so far with finish reason `abort`,
    so the job is billed for exactly what the engine made."""

    async def abort(self, request_ids: Sequence[str]) -> None: ...


def render_prompt_ids(tokenizer: Any, request: GenerationRequest) -> list[int]:
    """Token ids of a request, chat template applied. Every engine uses this one
    rendering, so the parity check compares models, not templating."""
    if request.messages is not None:
        tools = {"tools": [dict(tool) for tool in request.tools]} if request.tools else {}
        text = tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=True, **tools
        )
    else:
        text = request.prompt
    return list(tokenizer.encode(text, add_special_tokens=False))


def publish_adapter_gauges(loaded: Collection[str]) -> None:
    """Set `sciserve_adapter_loaded` for every role (its own adapter, named after it;
    other names stay out of the label set, which must be bounded). An engine calls it
    when it has started with its initial adapters (loads and unloads keep it current
    after that); the gauge is per process, so merely building an engine must not
    reset it."""
    for role in ROLES:
        ADAPTER_LOADED.labels(role=role).set(1 if role in loaded else 0)


class AdapterSlots:
    """Name → adapter bookkeeping shared by the engines, with stable integer ids. A
    role's own adapter is named after the role (`AdapterSpec.name`).

    vLLM CPU LoRA slot -1 bug: a base request in a batch with LoRA requests gets the
    adapter in the *last* slot. Keeping one slot always free (adapters + 1 <= max_loras)
    makes that slot empty, so base requests stay base. See vllm-project/vllm PR 48421.
    """

    def __init__(self, max_loras: int | None):
        self.max_loras = max_loras
        self._specs: dict[str, AdapterSpec] = {}
        self._ids: dict[str, int] = {}
        self._next_id = 1

    def check_room(self, name: str) -> None:
        if self.max_loras is None or name in self._specs:
            return
        if len(self._specs) + 2 > self.max_loras:
            raise AdapterError(
                f"No free LoRA slot for adapter {name!r}: {len(self._specs)} adapters are loaded "
                f"and max_loras={self.max_loras} must stay at least one above that "
                "(vLLM CPU LoRA slot bug). Raise SCISERVE_MAX_LORAS."
            )

    def next_id(self) -> int:
        """A fresh id per load: a new id makes vLLM read the files again."""
        self._next_id += 1
        return self._next_id - 1

    def add(self, spec: AdapterSpec, lora_id: int) -> int | None:
        """Record an adapter once its backend has loaded it; returns the replaced id."""
        replaced = self._ids.get(spec.name)
        self._specs[spec.name] = spec
        self._ids[spec.name] = lora_id
        if spec.name in ROLES:  # a role's own adapter; named ones stay out of the labels
            ADAPTER_LOADED.labels(role=spec.name).set(1)
        return replaced

    def remove(self, name: str) -> int:
        if name not in self._specs:
            what = f"role {name!r}" if name in ROLES else f"adapter {name!r}"
            raise AdapterError(f"No adapter is loaded for {what}.")
        del self._specs[name]
        if name in ROLES:
            ADAPTER_LOADED.labels(role=name).set(0)
        return self._ids.pop(name)

    def get(self, name: str | None) -> tuple[AdapterSpec, int] | None:
        """The named adapter (a role's own is named after it) and its id, or None: the
        base model serves the request."""
        if name is None or name not in self._specs:
            return None
        return self._specs[name], self._ids[name]

    def specs(self) -> dict[str, AdapterSpec]:
        return dict(self._specs)


def record_usage(completions: Sequence[Completion]) -> None:
    """Engine metrics in one place, whatever the backend."""
    ENGINE_CALLS.inc(len(completions))
    ENGINE_TOKENS.labels(kind="prompt").inc(sum(c.prompt_tokens for c in completions))
    ENGINE_TOKENS.labels(kind="completion").inc(sum(c.completion_tokens for c in completions))
