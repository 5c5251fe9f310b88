"""Prometheus metrics of the tool servers, all named `sciserve_*`.

Label values come from closed sets, so no client input can grow the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
