"""One `Settings` object, read from `SCISERVE_*` environment variables.

Every knob an operator may turn lives here, so the README's settings table and the
code cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineKind = Literal["vllm", "hf", "openai"]
MIN_TOOL_TOKEN_LENGTH = 16
# The header a worker sends SCISERVE_TOOL_TOKEN in (tool servers also take it as a Bearer).
TOOL_TOKEN_HEADER = "X-Sciserve-Tool-Token"


class Settings(BaseSettings):
    """Service configuration. Defaults run the embedded service on a CPU box."""

    model_config = SettingsConfigDict(env_prefix="SCISERVE_", env_file=None, extra="ignore")

    # --- model and engine ---
    model: str | None = Field(
        default=None,
        description="Hugging Face model folder to serve. Unset: the prepared demo model.",
    )
    demo_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = "qwen2.5-coder-1.5b"
    engine: EngineKind = "vllm"
    engine_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible `vllm serve` (engine=openai)."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_model_len: int = Field(default=4096, ge=256)
    kv_cache_bytes: int | None = Field(
        default=None,
        ge=1 << 24,
        description="KV cache size. Unset: 1 GiB on CPU (vLLM CPU does not start without "
        "one), vLLM's own GPU memory sizing on GPU.",
    )
    cpu_reserved_cores: int | None = Field(
        default=None,
        ge=0,
        description="vLLM CPU cores kept for the runtime. Unset: 0 for real models, vLLM's "
        "default for tiny ones (measured faster each way).",
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Share of GPU memory vLLM may take (several engines on one GPU). Unset: "
        "vLLM's default.",
    )
    enforce_eager: bool | None = Field(
        default=None, description="Unset: eager on CPU (fastest there), CUDA graphs on GPU."
    )
    max_num_seqs: int | None = Field(
        default=None,
        ge=1,
        description="Engine batch size. Unset: 64 on CPU (measured), vLLM's own "
        "hardware-sized default on GPU (as `vllm serve`).",
    )
    enable_lora: bool = True
    max_lora_rank: int = Field(default=16, ge=1)
    max_loras: int = Field(
        default=4,
        ge=2,
        description="LoRA slots. Kept at least (adapters in use + 1): vLLM CPU LoRA slot -1 bug.",
    )
    adapter_registry: Path | None = Field(
        default=None,
        description="YAML/JSON file mapping roles to adapter folders. Unset: the demo "
        "model's shipped adapters (adapters/shipped/<demo model>), if any.",
    )
    shipped_adapters: bool = Field(
        default=True,
        description="Serve the trained adapters shipped for the demo model when no registry "
        "is set. Requests still choose the base model per role with adapters: {role: base}.",
    )

    # --- solve strategies ---
    sample_temperature: float = Field(
        default=0.7, ge=0, le=2, description="Temperature when samples > 1 (one sample is greedy)."
    )
    sample_top_p: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Nucleus sampling for sampled candidates; 1.0 is temperature-only sampling "
        "(top_p < 1 made vLLM on CPU 1.5-1.7x slower per token).",
    )
    max_tool_calls: int = Field(default=4, ge=0, le=16, description="Tool calls per candidate.")
    prompt_style: Literal["sciserve", "awl"] = Field(
        default="sciserve",
        description="Adaptive prompt layout when a request names none: 'awl' is AWL's own "
        "(for adapters trained with AWL's code), 'sciserve' the original one.",
    )
    role_fallback: bool = Field(
        default=True,
        description="Roles with no adapter run on the base model with the role prompts. Off: "
        "art needs asker and truster adapters, or the request gets a 422.",
    )
    few_shot_bank: Path | None = Field(
        default=None,
        description="JSONL of solved examples {problem, solution, options?} for few_shot. "
        "Unset: 256 gsm_symbolic worked solutions (reasoning-gym, seed 0).",
    )
    few_shot_retrieval: Literal["bm25", "minilm"] = Field(
        default="bm25", description="Example similarity: BM25, or all-MiniLM-L6-v2 embeddings."
    )
    auto_policy: Path | None = Field(
        default=None,
        description="JSON from `sciserve calibrate`: the confidence measure and threshold at "
        "which strategy.auto returns the greedy answer alone. Unset: the policy shipped for "
        "the demo model served (workers/strategies/auto_policies/), else always escalate.",
    )

    # --- gateway ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    admin_key: SecretStr | None = Field(
        default=None, description="Key for /admin endpoints. Unset: admin endpoints refuse all."
    )
    default_max_tokens: int = Field(default=1024, ge=1)
    default_timeout_s: float = Field(default=300.0, gt=0)
    worker_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Jobs one worker runs at once; keeps the engine batch full. Unset: 32 on "
        "CPU, at least the engine's batch capacity (max_num_seqs) on GPU.",
    )
    queue_max_depth: int = Field(default=1024, ge=1)
    result_ttl_s: float = Field(default=3600.0, gt=0)

    # --- distributed mode ---
    redis_url: str | None = Field(
        default=None, description="Redis for the queue, results and API keys. Unset: embedded."
    )
    redis_prefix: str = Field(default="sciserve", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    visibility_timeout_s: float = Field(
        default=30.0, gt=0, description="A job whose worker misses heartbeats this long is rerun."
    )
    max_attempts: int = Field(default=3, ge=1, description="Runs of one job before giving up.")
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, how long running jobs may finish."
    )
    worker_port: int = Field(
        default=8001, ge=0, le=65535, description="A worker's /healthz, /metrics and /admin."
    )
    result_cache: bool = Field(
        default=False, description="Answer a request identical to a finished one from its result."
    )

    # --- security ---
    require_api_key: bool | None = Field(
        default=None, description="Unset: required in distributed mode, off in embedded mode."
    )
    anonymous_scopes: list[Literal["solve", "reveal_thoughts", "admin"]] = Field(
        default=["solve"], description="Scopes of requests without a key, when keys are off."
    )
    rate_limit_per_minute: int = Field(default=120, ge=1, description="Requests per key.")
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Per key: tokens its requests may generate per minute (each request is "
        "charged its worst case at submit, like OpenAI's TPM). Unset: no token budget.",
    )
    max_request_tokens: int = Field(
        default=262_144,
        ge=1,
        description="Refuse (422) a request whose strategy may generate more tokens than this: "
        "every generation its strategy may make (tool-loop turns, plan steps, SCoRe and ART "
        "calls) x max_tokens.",
    )
    max_job_tool_calls: int = Field(
        default=32,
        ge=0,
        description="Tool (sandbox) runs one job may start, on every door: past it a tool call "
        "is answered with an error the model reads, and no run starts.",
    )
    key_store: Path | None = Field(
        default=None,
        description="SQLite file of API keys for a deployment without Redis (the embedded "
        "mode); with it, keys are required unless SCISERVE_REQUIRE_API_KEY=false.",
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024)

    # --- tool servers ---
    tool_urls: dict[str, str] | None = Field(
        default=None,
        description='Tool server base URLs by name, JSON (e.g. {"pde": "http://pde:8100"}). '
        "Unset: the embedded default mounts every server under /tools/NAME.",
    )
    mount_tools: bool = Field(default=True, description="Mount the tool servers in `serve`.")
    tool_timeout_s: float = Field(default=30.0, gt=0, description="Per tool call, client side.")
    tool_token: SecretStr | None = Field(
        default=None,
        description="The service token tool servers require on every route but /healthz "
        "(`Authorization: Bearer` or `X-Sciserve-Tool-Token`); the workers send it. Unset: a "
        "standalone tool server refuses to start (unless --insecure-no-token), and the "
        "embedded service makes a random one per process for its mounted tool servers.",
    )
    sandbox_warm: int = Field(default=4, ge=1, le=64, description="Warm sandbox children.")
    sandbox_cpu_s: int = Field(default=5, ge=1, le=300, description="CPU seconds per run.")
    sandbox_memory_mb: int = Field(default=512, ge=64, le=16384, description="Per run.")
    sandbox_wall_s: float = Field(default=10.0, gt=0, le=600, description="Wall clock per run.")
    # --- training loop ---
    trace_sink: Path | None = Field(
        default=None,
        description="Folder for trace records (JSONL, one per finished job) that become "
        "training data. Unset: no records.",
    )
    trace_max_bytes: int = Field(
        default=64 << 20, ge=1024, description="Size at which a trace file is rotated."
    )
    # --- OpenTelemetry (on with the standard OTEL_* variables: contract/telemetry.py) ---
    trace_content: bool = Field(
        default=False,
        description="Put prompts, outputs, answers and tool arguments and results into "
        "OpenTelemetry spans. Hidden thoughts only for jobs that may reveal them.",
    )
    tool_numerics: Literal["awl", "converged"] = Field(
        default="converged",
        description="Numerics of the pde and mechanics servers when a call names none: "
        "'awl' reproduces AWL's reference code (its test answers), 'converged' is "
        "physically right. Each server process reads its own.",
    )

    @field_validator(
        "model",
        "max_num_seqs",
        "worker_concurrency",
        "gpu_memory_utilization",
        "engine_url",
        "redis_url",
        "adapter_registry",
        "tool_urls",
        "few_shot_bank",
        "auto_policy",
        "trace_sink",
        "admin_key",
        "tool_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`FOO=` in an environment (common in templated manifests) means unset."""
        return None if value == "" else value

    @field_validator("tool_token")
    @classmethod
    def _tool_token_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        # A token anyone can guess would let them run code on the tool servers.
        if value is not None and len(value.get_secret_value()) < MIN_TOOL_TOKEN_LENGTH:
            raise ValueError(
                f"SCISERVE_TOOL_TOKEN must be at least {MIN_TOOL_TOKEN_LENGTH} characters; "
                "make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        return value

    @property
    def api_keys_required(self) -> bool:
        if self.require_api_key is not None:
            return self.require_api_key
        return self.redis_url is not None or self.key_store is not None

    # --- paths ---
    cache_dir: Path | None = Field(
        default=None, description="Where prepared models live. Unset: the user cache dir."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests build their own `Settings` instead."""
    return Settings()
