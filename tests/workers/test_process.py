"""Distributed mode with real processes: `sciserve gateway` and `sciserve worker`
subprocesses over a real Redis and real HTTP.

The workers here serve the tiny model on the transformers+peft engine
(SCISERVE_ENGINE=hf): it loads in a second, where a vLLM engine per worker would add
~30 s each. The queue, the processes and the faults are what these tests exercise;
vLLM is covered by the embedded tests.
"""

from __future__ import annotations

import re
import signal
import time

import httpx
import redis

from entrypoints.embedded import free_port
from tests.conftest import REDIS_URL, Spawn, api_key_headers


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _wait_all(client: httpx.Client, ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        responses = [client.get(f"/jobs/{job_id}") for job_id in ids]
        assert all(r.status_code == 200 for r in responses), responses[0].text
        statuses = [r.json() for r in responses]
        if all(s["status"] in ("succeeded", "failed") for s in statuses):
            return statuses
        time.sleep(0.5)
    raise AssertionError("jobs did not finish in time")


def test_killed_worker_jobs_are_reclaimed_and_all_finish_once(
    spawn: Spawn, redis_prefix: str
) -> None:
    _, gateway = spawn("gateway")
    victim, _ = spawn("worker")
    _, survivor_url = spawn("worker")
    headers = api_key_headers(redis_prefix, "solve")
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        ids = [client.post("/jobs", json={"problem": f"Compute {i} * 7."}).json()["id"]
               for i in range(100)]  # fmt: skip
        assert len(set(ids)) == 100
        # Kill the victim while it holds claimed, unfinished jobs.
        deadline = time.monotonic() + 60
        while True:
            pending = store.xpending_range(f"{redis_prefix}:jobs", "workers", "-", "+", 100)
            if any(str(victim.pid) in str(p["consumer"]) for p in pending):
                break
            assert time.monotonic() < deadline, "the victim never claimed a job"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        statuses = _wait_all(client, ids, timeout=180)
    assert [s["status"] for s in statuses] == ["succeeded"] * 100
    assert all(s["result"]["id"] == s["id"] for s in statuses)
    assert store.xlen(f"{redis_prefix}:jobs") == 0
    assert store.xpending(f"{redis_prefix}:jobs", "workers")["pending"] == 0
    attempts = [int(store.hget(f"{redis_prefix}:job:{i}", "attempts") or 0) for i in ids]
    assert max(attempts) >= 2  # some job ran again after the kill
    metrics = httpx.get(f"{survivor_url}/metrics").text
    assert _metric(metrics, "sciserve_job_retries_total") >= 1


def test_results_survive_a_gateway_restart(spawn: Spawn, redis_prefix: str) -> None:
    port = free_port()
    first, gateway = spawn("gateway", port=port)
    spawn("worker")
    headers = api_key_headers(redis_prefix, "solve")
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        ids = [client.post("/jobs", json={"problem": f"{i} + 1?"}).json()["id"] for i in range(10)]
    first.send_signal(signal.SIGTERM)
    first.wait(20)
    _, gateway = spawn("gateway", port=port)
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        statuses = _wait_all(client, ids, timeout=60)
    assert [s["status"] for s in statuses] == ["succeeded"] * 10


def test_sigterm_drains_the_worker_and_it_exits(spawn: Spawn, redis_prefix: str) -> None:
    _, gateway = spawn("gateway")
    worker, _ = spawn("worker")
    headers = api_key_headers(redis_prefix, "solve")
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        ids = [client.post("/jobs", json={"problem": f"{i} + 2?"}).json()["id"] for i in range(4)]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(40) == 0
        spawn("worker")  # whatever the first handed back, the second finishes
        statuses = _wait_all(client, ids, timeout=60)
    assert [s["status"] for s in statuses] == ["succeeded"] * 4


def test_idempotency_key_returns_the_same_job_and_runs_it_once(
    spawn: Spawn, redis_prefix: str
) -> None:
    _, gateway = spawn("gateway")
    _, worker = spawn("worker")
    headers = {**api_key_headers(redis_prefix, "solve"), "Idempotency-Key": "order-7"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        first = client.post("/jobs", json={"problem": "5 + 5?"})
        second = client.post("/jobs", json={"problem": "5 + 5?"})
        solved = client.post("/solve", json={"problem": "5 + 5?"})
        assert first.status_code == second.status_code == 202
        job_id = first.json()["id"]
        assert second.json()["id"] == job_id
        assert solved.status_code == 200 and solved.json()["id"] == job_id
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    runs = [e for e in store.lrange(f"{redis_prefix}:job:{job_id}:events", 0, -1)
            if '"running"' in e]  # fmt: skip
    assert len(runs) == 1
    assert store.hget(f"{redis_prefix}:job:{job_id}", "attempts") == "1"
    metrics = httpx.get(f"{worker}/metrics").text
    assert _metric(metrics, 'sciserve_jobs_total{outcome="succeeded"}') == 1
    assert _metric(metrics, "sciserve_worker_heartbeat_timestamp") > time.time() - 60
    assert "sciserve_worker_busy_slots" in metrics
