"""Every metric name the dashboard, the rules and the KEDA triggers read exists on a
real /metrics scrape: a `sciserve gateway` and a `sciserve worker` (vLLM engine on the
tiny model) over the real Redis, and a `sciserve tool-server`, after one /solve.

Nothing is mocked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.embedded import ServiceProcesses
from tests.conftest import Spawn, api_key_headers
from tests.helm.promql import dashboard_exprs, keda_exprs, metric_names, rule_exprs

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported_names(text: str) -> set[str]:
    """Series names a scrape offers, labelled families without samples included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


# The tool servers' service token, as the chart hands it to them, the workers and the
# tool servers' ServiceMonitor.
TOOL_TOKEN = "metrics-test-tool-token-0123456789"


def _scrape(spawn: Spawn, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    tools = ServiceProcesses(tmp_path, {})
    try:
        started = time.monotonic()
        _, tool_url = tools.start_tool_server("pde", token=TOOL_TOKEN)
        _, gateway = spawn("gateway")
        _, worker = spawn(
            "worker", ready_timeout_s=420, engine="vllm", kv_cache_bytes=64 * 1024 * 1024,
            max_loras=4, tool_urls=f'{{"pde": "{tool_url}"}}', tool_token=TOOL_TOKEN,
        )  # fmt: skip
        print(f"services up in {time.monotonic() - started:.0f} s")
        headers = api_key_headers(redis_prefix, "solve")
        response = httpx.post(
            f"{gateway}/solve", json={"problem": "What is 2 + 3?"}, headers=headers, timeout=300
        )
        assert response.status_code == 200, response.text
        print(f"one /solve done at {time.monotonic() - started:.0f} s")
        bearer = {"Authorization": f"Bearer {TOOL_TOKEN}"}  # the ServiceMonitor's
        assert httpx.get(f"{tool_url}/metrics", timeout=30).status_code == 401
        return {
            name: httpx.get(f"{url}/metrics", timeout=30, headers=headers).text
            for name, url, headers in (
                ("gateway", gateway, {}),
                ("worker", worker, {}),
                ("tool", tool_url, bearer),
            )
        }
    finally:
        tools.stop_all()


def test_every_queried_metric_is_exported(
    spawn: Spawn, redis_prefix: str, tmp_path: Path, defaults: list[dict[str, Any]]
) -> None:
    scrapes = _scrape(spawn, redis_prefix, tmp_path)
    exported = set().union(*(exported_names(text) for text in scrapes.values()))
    used = metric_names(dashboard_exprs() + rule_exprs(defaults) + keda_exprs(defaults))
    assert any(n.startswith("vllm:") for n in used)
    missing = sorted(used - exported)
    assert not missing, f"queried but never exported: {missing}"
    # The queue gauges the KEDA triggers read are on the gateway's own scrape.
    assert metric_names(keda_exprs(defaults)) <= exported_names(scrapes["gateway"])
