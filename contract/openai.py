"""Wire models of the OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`).

Only pydantic models live here, as in vLLM's `entrypoints/openai/protocol.py`. The
request takes OpenAI's chat fields plus sciserve's own (`strategy`, `tools` as tool
server names, `reference`, `reveal_thoughts`, `answer_type`), which clients send with
the SDK's `extra_body`. Unknown fields are refused, so a typo names itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.schemas import (
    MAX_PROBLEM_CHARS,
    MAX_TIMEOUT_S,
    AdapterName,
    AdapterRole,
    AnswerType,
    StrategyField,
)

MAX_MESSAGES = 128


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    """A text part of a message's content list (the only part type served)."""

    type: Literal["text"]
    text: str = Field(max_length=MAX_PROBLEM_CHARS)


class FunctionCallOut(BaseModel):
    name: str
    arguments: str  # a JSON object, as a string (OpenAI's format)


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ChatMessageIn(_Strict):
    """One message of the conversation. The last user message is the problem."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[ToolCallOut] | None = None
    tool_call_id: str | None = Field(default=None, max_length=256)
    # Reasoning an earlier assistant turn carried; accepted and never sent to the model.
    reasoning: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionSpec(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    strict: bool | None = None


class FunctionTool(_Strict):
    """A client-side function the policy may call (OpenAI's `tools` entry)."""

    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # sent by newer SDKs; no effect here


class ChatCompletionRequest(_Strict):
    """`POST /v1/chat/completions` body.

    Sampling parameters (`temperature`, `top_p`, penalties) are accepted for
    compatibility and not applied: the strategy decides how each stage samples (greedy
    for one sample, `SCISERVE_SAMPLE_TEMPERATURE` for votes). `seed` is applied: a
    vote's sample i draws with seed + i, so one seed replays the same samples.
    """

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32_768)
    n: int = Field(default=1, ge=1, le=1, description="One choice; votes are `strategy.samples`.")
    tools: list[FunctionTool] | list[str] | None = Field(
        default=None,
        description="Client functions (OpenAI format), or sciserve tool server names "
        "(python, pde, mechanics, climate, epidemiology) that the server calls itself.",
    )
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logprobs: Literal[False] | None = None
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None
    store: bool | None = None
    # sciserve's own fields (the SDK's extra_body)
    strategy: StrategyField | None = Field(
        default=None, description="The same object as /solve's; overrides the model's preset."
    )
    reference: str | None = Field(default=None, max_length=MAX_PROBLEM_CHARS)
    reveal_thoughts: bool = False
    answer_type: AnswerType = "auto"
    adapters: dict[AdapterRole, AdapterName] | None = Field(
        default=None, description="The same as /solve's: which loaded adapter plays a role."
    )
    options: list[str] | None = Field(default=None, min_length=2, max_length=26)
    timeout_s: float | None = Field(default=None, ge=1.0, le=MAX_TIMEOUT_S)
    budget_tokens: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="The same as /solve's: generated plus reasoning tokens the job may spend.",
    )


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ChatUsage(BaseModel):
    """Every engine call of the job: each sample, refinement, Asker and Truster turn.
    `completion_tokens` includes the hidden thoughts, as OpenAI counts reasoning."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning: str | None = Field(
        default=None, description="Hidden thoughts, only with reveal_thoughts and its scope."
    )
    tool_calls: list[ToolCallOut] | None = None


class Choice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop", "length", "tool_calls"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage
    sciserve: dict[str, Any] = Field(
        description="sciserve's extension: strategy, tools with calls and results, votes, "
        "refine decisions, stages and timings."
    )


class ChunkToolCallFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ChunkToolCall(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChunkToolCallFunction


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` line of a stream. Progress chunks have no choices and carry the
    stage in `sciserve`; the SDK ignores them."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None
    sciserve: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sciserve"
    sciserve: dict[str, Any] = Field(
        default_factory=dict, description="The preset's strategy and what it does."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error body, which the SDK turns into its typed exceptions."""

    error: ErrorDetail
