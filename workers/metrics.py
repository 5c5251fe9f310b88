"""Prometheus metrics of a worker: engine, pipeline stages and the claim loop, all
named `sciserve_*`.

Label values come from closed sets, so no client input can grow the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
TRUSTER_UNREADABLE = Counter(
    "sciserve_truster_unreadable_total",
    "ART Truster verdicts that could not be read; each keeps the initial solution (and is "
    "counted as choice=initial above), so a Truster that never answers is visible here.",
)
PLAN_STEPS = Counter(
    "sciserve_plan_steps_total",
    "PEARL plan steps executed, by action (find, compute, derive, compare).",
    ["action"],
)
THOUGHT_FORMAT_BREAKS = Counter(
    "sciserve_thought_format_breaks_total",
    "TPO outputs without the response marker. after_resample=false: a first output (it is "
    "resampled once); true: its resample broke too, so only the final answer the output "
    "states is served and the rest is hidden as thought.",
    ["after_resample"],
)
for _resampled in ("false", "true"):  # both series exist from the start, for rate()
    THOUGHT_FORMAT_BREAKS.labels(after_resample=_resampled)
JOBS = Counter(
    "sciserve_jobs_total",
    "Jobs finished by a worker, by outcome: succeeded, released (handed back at shutdown), "
    "requeued (handed back because the engine died under it), declined (left to a peer "
    "because an adapter it needs failed to load here) or a failure's outcome code "
    "(invalid_request, prompt_too_long, tool_unavailable, engine_unavailable, timeout, "
    "cancelled, internal).",
    ["outcome"],
)
JOBS_CANCELLED = Counter(
    "sciserve_jobs_cancelled_total",
    "Running jobs this worker stopped because they were cancelled (DELETE /jobs/{id}, or "
    "the /solve client disconnected).",
)
WORKER_BUSY_SLOTS = Gauge("sciserve_worker_busy_slots", "Jobs this worker is running now.")
CLIENT_TOOL_CALLS = Counter(
    "sciserve_client_tool_calls_total",
    "Generations offered client functions, by outcome: called (the answer is tool calls), "
    "answered (text instead), unparsed (a call was required but none could be read), "
    "hidden (tool_choice 'none').",
    ["outcome"],
)
ENGINE_DEAD = Gauge(
    "sciserve_engine_dead",
    "1 while this worker's engine is dead (its engine process exited) and not yet "
    "restarted; the worker is not ready meanwhile.",
)
ENGINE_RESTARTS = Counter(
    "sciserve_engine_restarts_total",
    "In-process restarts of this worker's engine after its engine process died.",
)
TOOL_RUNS_REFUSED = Counter(
    "sciserve_tool_runs_refused_total",
    "Tool calls refused because their job had started all the tool runs it may "
    "(SCISERVE_MAX_JOB_TOOL_CALLS).",
)
VOTE_SAMPLES = Counter(
    "sciserve_vote_samples_total",
    "Samples of votes (samples > 1) by kind: used (finished and counted in the vote) or "
    "saved (stopped or never started because the stop rule had decided the vote).",
    ["kind"],
)
for _kind in ("used", "saved"):
    VOTE_SAMPLES.labels(kind=_kind)
VOTE_TOKENS_SAVED = Counter(
    "sciserve_vote_tokens_saved_total",
    "Generated tokens an early-stopped vote did not spend, estimated per stopped sample as "
    "the mean of its vote's finished samples less what it had generated.",
)
AUTO_DECISIONS = Counter(
    "sciserve_auto_decisions_total",
    "strategy.auto after the greedy answer: greedy (confident enough, returned alone) or "
    "escalate (an early-stopped vote followed).",
    ["decision"],
)
for _decision in ("greedy", "escalate"):
    AUTO_DECISIONS.labels(decision=_decision)
