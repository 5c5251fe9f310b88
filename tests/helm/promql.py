"""The PromQL the chart ships: the dashboard's panels, the rules and the KEDA triggers,
and the metric names each one reads."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.helm.tools import CHART, FULLNAME, one

# `sciserve_*` and `vllm:*` series; recording rules (`sciserve:...`) and `up` are
# Prometheus's own and are not scraped from the service.
METRIC = re.compile(r"\b(sciserve_[a-z0-9_]+|vllm:[a-z0-9_:]+)")


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads((CHART / "dashboards" / "sciserve.json").read_text())
    return board


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def rule_exprs(docs: list[dict[str, Any]]) -> list[str]:
    rule = one(docs, "PrometheusRule", FULLNAME)
    return [str(r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]]


def keda_exprs(docs: list[dict[str, Any]]) -> list[str]:
    scaled = one(docs, "ScaledObject", f"{FULLNAME}-worker")
    return [t["metadata"]["query"] for t in scaled["spec"]["triggers"]]


def as_prometheus(expr: str) -> str:
    """Grafana's variables replaced by values Prometheus accepts."""
    return expr.replace("$__rate_interval", "5m").replace("$namespace", "default")


def metric_names(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr)}
