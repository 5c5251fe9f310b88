"""Prometheus metrics of the gateway, all named `sciserve_*`.

Label values come from closed sets, so no client input can grow the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "sciserve_requests_total",
    "Solve requests by strategy and outcome (ok, invalid, rejected, unavailable, timeout, "
    "cancelled, error).",
    ["strategy", "outcome"],
)
REQUEST_DURATION = Histogram(
    "sciserve_request_duration_seconds",
    "End-to-end /solve latency, queue wait included.",
    ["strategy"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300),
)
QUEUE_DEPTH = Gauge("sciserve_queue_depth", "Jobs queued or running, not yet finished.")
QUEUE_OLDEST_AGE = Gauge(
    "sciserve_queue_oldest_age_seconds", "Age of the oldest job still waiting in the queue."
)
QUEUE_EXPECTED_SEQUENCES = Gauge(
    "sciserve_queue_expected_engine_sequences",
    "Engine sequences the unfinished jobs' strategies imply (samples x stages): the "
    "strategy-weighted backlog the worker autoscaler scales on.",
)
AUTH_FAILURES = Counter(
    "sciserve_auth_failures_total",
    "Refused requests by reason (missing_key, bad_key, scope, rate_limited).",
    ["reason"],
)
BUDGET_REFUSALS = Counter(
    "sciserve_budget_refusals_total",
    "Requests refused for their cost, by reason (context: max_tokens past the model's "
    "context, request_ceiling: above SCISERVE_MAX_REQUEST_TOKENS, token_budget: the key's "
    "tokens per minute are spent, budget_tokens: a request's own budget cannot fit one "
    "answer), and by door (solve, jobs, openai).",
    ["reason", "door"],
)
