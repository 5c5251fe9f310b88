"""Builds the chart's Grafana dashboard (dashboards/sciserve.json) with grafana-foundation-sdk.

The JSON is generated, never edited by hand: change the panels here and run
`.tools/venv/bin/python helm/sciserve/dashboards/build_dashboard.py` (the venv comes from
scripts/install-ops-tools.sh). tests/helm/test_dashboard.py fails when the committed JSON
differs from what this file builds, and checks every query against a real /metrics scrape.
"""

# ruff: noqa: E501  (PromQL reads best on one line)
from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).with_name("sciserve.json")
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace="$namespace"'

# (title, unit, [(PromQL, legend)]) per panel, by row. `$__rate_interval` is Grafana's.
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    (
        "Requests",
        [
            ("Requests by strategy and outcome", "reqps", [(
                f"sum by (strategy, outcome) (rate(sciserve_requests_total{{{NS}}}[$__rate_interval]))",
                "{{strategy}} {{outcome}}",
            )]),
            ("End-to-end latency p50 / p95 by strategy", "s", [
                (f"histogram_quantile(0.5, sum by (strategy, le) (rate(sciserve_request_duration_seconds_bucket{{{NS}}}[$__rate_interval])))", "p50 {{strategy}}"),
                (f"histogram_quantile(0.95, sum by (strategy, le) (rate(sciserve_request_duration_seconds_bucket{{{NS}}}[$__rate_interval])))", "p95 {{strategy}}"),
            ]),
            ("Stage latency p50 / p95", "s", [
                (f"histogram_quantile(0.5, sum by (stage, le) (rate(sciserve_stage_duration_seconds_bucket{{{NS}}}[$__rate_interval])))", "p50 {{stage}}"),
                (f"histogram_quantile(0.95, sum by (stage, le) (rate(sciserve_stage_duration_seconds_bucket{{{NS}}}[$__rate_interval])))", "p95 {{stage}}"),
            ]),
            ("Jobs finished by outcome", "ops", [(
                f"sum by (outcome) (rate(sciserve_jobs_total{{{NS}}}[$__rate_interval]))",
                "{{outcome}}",
            )]),
        ],
    ),
    (
        "Tokens and strategies",
        [
            ("Tokens: visible / hidden thought / tool", "short", [(
                f"sum by (kind) (rate(sciserve_solve_tokens_total{{{NS}}}[$__rate_interval]))",
                "{{kind}}",
            )]),
            ("Engine tokens (prompt, completion)", "short", [(
                f"sum by (kind) (rate(sciserve_engine_tokens_total{{{NS}}}[$__rate_interval]))",
                "{{kind}}",
            )]),
            ("Tool-vs-direct decisions (AWL)", "ops", [(
                f"sum by (decision) (rate(sciserve_tool_decisions_total{{{NS}}}[$__rate_interval]))",
                "{{decision}}",
            )]),
            ("SCoRe flips", "ops", [(
                f"sum by (direction) (rate(sciserve_selfcorrect_flips_total{{{NS}}}[$__rate_interval]))",
                "{{direction}}",
            )]),
            ("ART refine rate", "percentunit", [(
                f'sum(rate(sciserve_art_refine_total{{{NS}, decision="refine"}}[$__rate_interval])) / sum(rate(sciserve_art_refine_total{{{NS}}}[$__rate_interval]))',
                "refine rate",
            )]),
            ("Truster choices", "ops", [(
                f"sum by (choice) (rate(sciserve_truster_choice_total{{{NS}}}[$__rate_interval]))",
                "{{choice}}",
            ), (
                f"sum(rate(sciserve_truster_unreadable_total{{{NS}}}[$__rate_interval]))",
                "unreadable (kept initial)",
            )]),
            ("Early-stopped votes: samples used / saved, tokens saved", "short", [(
                f"sum by (kind) (rate(sciserve_vote_samples_total{{{NS}}}[$__rate_interval]))",
                "samples {{kind}}",
            ), (
                f"sum(rate(sciserve_vote_tokens_saved_total{{{NS}}}[$__rate_interval]))",
                "tokens saved (estimate)",
            ), (
                f"sum by (decision) (rate(sciserve_auto_decisions_total{{{NS}}}[$__rate_interval]))",
                "auto {{decision}}",
            )]),
            ("PEARL plan steps by action", "ops", [(
                f"sum by (action) (rate(sciserve_plan_steps_total{{{NS}}}[$__rate_interval]))",
                "{{action}}",
            )]),
        ],
    ),
    (
        "Tools",
        [
            ("Tool calls by tool and outcome", "ops", [(
                f"sum by (tool, outcome) (rate(sciserve_tool_calls_total{{{NS}}}[$__rate_interval]))",
                "{{tool}} {{outcome}}",
            )]),
            ("Tool latency p95", "s", [(
                f"histogram_quantile(0.95, sum by (tool, le) (rate(sciserve_tool_duration_seconds_bucket{{{NS}}}[$__rate_interval])))",
                "{{tool}}",
            )]),
        ],
    ),
    (
        "Queue and workers",
        [
            ("Queue depth and weighted backlog", "short", [
                (f"max(sciserve_queue_depth{{{NS}}})", "jobs"),
                (f"max(sciserve_queue_expected_engine_sequences{{{NS}}})", "expected engine sequences"),
            ]),
            ("Oldest queued job age", "s", [
                (f"max(sciserve_queue_oldest_age_seconds{{{NS}}})", "oldest"),
            ]),
            ("Busy slots per worker", "short", [
                (f"sum by (pod) (sciserve_worker_busy_slots{{{NS}}})", "{{pod}}"),
            ]),
            ("Loaded adapters", "short", [
                (f"sum by (role) (sciserve_adapter_loaded{{{NS}}})", "{{role}}"),
            ]),
            ("Job retries (reclaimed)", "ops", [
                (f"sum(rate(sciserve_job_retries_total{{{NS}}}[$__rate_interval]))", "retries"),
            ]),
        ],
    ),
    (
        "vLLM engine",
        [
            ("KV cache usage", "percentunit", [
                (f"max by (pod) (vllm:kv_cache_usage_perc{{{NS}}})", "{{pod}}"),
            ]),
            ("Time to first token p50 / p95", "s", [
                (f"histogram_quantile(0.5, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{{NS}}}[$__rate_interval])))", "p50"),
                (f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{{NS}}}[$__rate_interval])))", "p95"),
            ]),
            ("Running / waiting requests", "short", [
                (f"sum(vllm:num_requests_running{{{NS}}})", "running"),
                (f"sum(vllm:num_requests_waiting{{{NS}}})", "waiting"),
            ]),
        ],
    ),
]  # fmt: skip


def build() -> dict[str, object]:
    """The dashboard as a JSON-ready dict."""
    board = (
        dashboard.Dashboard("sciserve")
        .uid("sciserve")
        .tags(["sciserve", "vllm"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DS)
            .query("label_values(sciserve_queue_depth, namespace)")
        )
    )  # fmt: skip
    for row_title, panels in ROWS:
        board = board.with_row(dashboard.Row(row_title))
        for title, unit, queries in panels:
            panel = timeseries.Panel().title(title).unit(unit).datasource(DS).height(8).span(8)
            for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
                panel = panel.with_target(
                    prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
                )
            board = board.with_panel(panel)
    board = board.with_row(dashboard.Row("Now")).with_panel(
        stat.Panel()
        .title("Workers up")
        .datasource(DS)
        .height(4)
        .span(6)
        .with_target(prometheus.Dataquery().expr(f"count(sciserve_worker_busy_slots{{{NS}}})").ref_id("A"))
    )  # fmt: skip
    encoded: dict[str, object] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
