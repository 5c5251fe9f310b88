"""vLLM's own engine metrics on a real worker process's /metrics, beside `sciserve_*`.

A `sciserve worker` runs the in-process vLLM engine (CPU) on the tiny model, behind a
real `sciserve gateway` over real Redis; after a /solve (policy role: a LoRA request)
the worker's /metrics must carry vLLM's scheduler, KV-cache, latency, prefix-cache
and LoRA series next to ours.
"""

from __future__ import annotations

import re

import httpx

from tests.conftest import (
    TEST_DEVICE,
    TEST_DTYPE,
    TEST_GPU_MEMORY_UTILIZATION,
    Spawn,
    _import_vllm,
    api_key_headers,
)

VLLM_SERIES = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_count",
    "vllm:inter_token_latency_seconds_count",
    "vllm:prefix_cache_hits_total",
    "vllm:prefix_cache_queries_total",
    "vllm:lora_requests_info",
    "vllm:generation_tokens_total",
)


def _value(text: str, name: str) -> float:
    """The sum of a series over its label sets (0 when absent)."""
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$"
    return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


def test_worker_metrics_carry_vllm_engine_series(spawn: Spawn, redis_prefix: str) -> None:
    _import_vllm()
    _, gateway = spawn("gateway")
    gpu = {"gpu_memory_utilization": TEST_GPU_MEMORY_UTILIZATION} if TEST_DEVICE == "cuda" else {}
    _, worker = spawn(
        "worker",
        **gpu,
        engine="vllm",
        dtype=TEST_DTYPE,
        kv_cache_bytes=64 * 1024 * 1024,
        max_loras=4,
        ready_timeout_s=300,
    )
    headers = api_key_headers(redis_prefix, "solve")
    with httpx.Client(base_url=gateway, headers=headers, timeout=120) as client:
        for _ in range(2):  # the second run of the same prompt can hit the prefix cache
            response = client.post("/solve", json={"problem": "What is 15% of 80?"})
            assert response.status_code == 200, response.text
    text = httpx.get(f"{worker}/metrics", timeout=10).text
    missing = [name for name in VLLM_SERIES if not re.search(rf"^{re.escape(name)}\b", text, re.M)]
    assert not missing, f"vLLM series missing from the worker's /metrics: {missing}"
    assert _value(text, "vllm:time_to_first_token_seconds_count") >= 2
    assert _value(text, "vllm:generation_tokens_total") > 0
    assert _value(text, "vllm:prefix_cache_queries_total") > 0
    assert 'max_lora="4"' in text  # vllm:lora_requests_info labels
    assert _value(text, 'sciserve_jobs_total{outcome="succeeded"}') == 2
