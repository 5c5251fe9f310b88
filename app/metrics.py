"""Prometheus metrics of the gateway and the worker, all named `sciserve_*`.

Label values come from closed sets (strategy names, outcomes, token kinds, roles), so
no client input can grow the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "sciserve_requests_total",
    "Solve requests by strategy and outcome (ok, invalid, rejected, timeout, error).",
    ["strategy", "outcome"],
)
REQUEST_DURATION = Histogram(
    "sciserve_request_duration_seconds",
    "End-to-end /solve latency, queue wait included.",
    ["strategy"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300),
)
ENGINE_TOKENS = Counter(
    "sciserve_engine_tokens_total",
    "Tokens through the engine by kind (prompt, completion).",
    ["kind"],
)
ENGINE_CALLS = Counter(
    "sciserve_engine_calls_total",
    "Engine generate requests; one request with n=K counts once.",
)
ADAPTER_LOADED = Gauge(
    "sciserve_adapter_loaded",
    "1 when the role's LoRA adapter is loaded, 0 when the role falls back to the base model.",
    ["role"],
)

# --- solve pipeline stages (workers/strategies) ---
STAGE_DURATION = Histogram(
    "sciserve_stage_duration_seconds",
    "Time of one pipeline stage (few_shot, generate, selfcorrect, art_ask, art_refine, "
    "art_trust, select) of one job.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300),
)
SOLVE_TOKENS = Counter(
    "sciserve_solve_tokens_total",
    "Generated and fed-back tokens by kind: visible (completion the user may see), thought "
    "(hidden TPO thoughts) and tool (tool results put into prompts).",
    ["kind"],
)
TOOL_DECISIONS = Counter(
    "sciserve_tool_decisions_total",
    "AWL tool-vs-direct decisions of adaptive candidates (tool, direct).",
    ["decision"],
)
SELFCORRECT_FLIPS = Counter(
    "sciserve_selfcorrect_flips_total",
    "SCoRe attempts whose correctness changed, when a reference is known (i_to_c, c_to_i).",
    ["direction"],
)
ART_REFINE = Counter(
    "sciserve_art_refine_total", "ART Asker decisions per candidate (refine, skip).", ["decision"]
)
TRUSTER_CHOICE = Counter(
    "sciserve_truster_choice_total",
    "ART Truster choices between a candidate's initial and refined solution.",
    ["choice"],
)
THOUGHT_FORMAT_BREAKS = Counter(
    "sciserve_thought_format_breaks_total",
    "TPO outputs without the response marker, served whole as the response.",
)

# --- queue and workers (distributed mode; the embedded queue reports them too) ---
QUEUE_DEPTH = Gauge("sciserve_queue_depth", "Jobs queued or running, not yet finished.")
QUEUE_OLDEST_AGE = Gauge(
    "sciserve_queue_oldest_age_seconds", "Age of the oldest job still waiting in the queue."
)
JOBS = Counter(
    "sciserve_jobs_total",
    "Jobs finished by a worker, by outcome (succeeded, failed, invalid, timeout, released).",
    ["outcome"],
)
JOB_RETRIES = Counter(
    "sciserve_job_retries_total",
    "Jobs reclaimed from a worker that stopped heartbeating, and run again.",
)
WORKER_BUSY_SLOTS = Gauge("sciserve_worker_busy_slots", "Jobs this worker is running now.")
WORKER_HEARTBEAT = Gauge(
    "sciserve_worker_heartbeat_timestamp", "Unix time of this worker's last heartbeat."
)
AUTH_FAILURES = Counter(
    "sciserve_auth_failures_total",
    "Refused requests by reason (missing_key, bad_key, scope, rate_limited).",
    ["reason"],
)

# --- tool servers ---
TOOL_CALLS = Counter(
    "sciserve_tool_calls_total",
    "Tool invocations by tool and outcome (ok, bad_arguments, timeout, too_large, error).",
    ["tool", "outcome"],
)
TOOL_DURATION = Histogram(
    "sciserve_tool_duration_seconds",
    "Time a tool server spent on one invocation, validation included.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
SANDBOX_KILLS = Counter(
    "sciserve_sandbox_kills_total",
    "Sandboxed Python runs stopped by a limit (cpu, wall, memory, output, crash).",
    ["reason"],
)
