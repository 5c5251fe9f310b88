"""Adapters across the pool: `POST/DELETE /admin/adapters` on the gateway changes every
worker, a worker started later loads the whole set, `GET` shows each worker's state
and a failed load says why; jobs that need an adapter a worker failed to load go to a
peer that has it.

Real `sciserve gateway` and two real `sciserve worker` processes over real Redis. The
workers serve the tiny model on the transformers+peft engine (SCISERVE_ENGINE=hf): the
pool mechanics are under test, and it loads in a second where vLLM takes ~30 s.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, Spawn, api_key_headers
from workers.models.tiny import TinyModel

ADMIN = {"X-Admin-Key": ADMIN_KEY}


def _roles(url: str) -> dict[str, dict]:
    response = httpx.get(f"{url}/admin/adapters", headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return {a["role"]: a for a in response.json()}


def _gauge(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} missing from {url}/metrics"
    return float(match.group(1))


def _jobs(url: str, outcome: str) -> float:
    """This worker's `sciserve_jobs_total{outcome}`; 0 before the first such job."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = rf'^sciserve_jobs_total{{outcome="{outcome}"}} ([0-9.e+-]+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_adapter_changes_reach_every_worker_and_later_ones(
    spawn: Spawn, redis_prefix: str, tiny_model: TinyModel
) -> None:
    _, gateway = spawn("gateway", admin_key=ADMIN_KEY)
    _, first = spawn("worker", admin_key=ADMIN_KEY)
    asker_weights = str(tiny_model.adapters["asker"])
    body = {
        "role": "policy",
        "path": asker_weights,
        "base_model": str(tiny_model.model_dir),
        "rank": tiny_model.rank,
    }

    loaded = httpx.post(f"{gateway}/admin/adapters", json=body, headers=ADMIN, timeout=60)
    assert loaded.status_code == 200, loaded.text
    info = loaded.json()
    assert info["loaded"] is True and info["error"] is None
    assert [w["path"] for w in info["workers"]] == [asker_weights]
    assert _roles(first)["policy"]["path"] == asker_weights  # the worker's own view

    # A worker started after the change loads the whole set before it is ready.
    _, second = spawn("worker", admin_key=ADMIN_KEY)
    assert _roles(second)["policy"]["path"] == asker_weights
    pool = _roles(gateway)["policy"]
    assert pool["loaded"] is True and len(pool["workers"]) == 2
    assert {w["path"] for w in pool["workers"]} == {asker_weights}

    # A load that fails on the workers: each reports why; the old adapter keeps serving.
    broken = {**body, "role": "truster", "path": "/nonexistent/adapter"}
    failed = httpx.post(f"{gateway}/admin/adapters", json=broken, headers=ADMIN, timeout=60)
    assert failed.status_code == 200, failed.text
    truster = failed.json()
    assert truster["loaded"] is False
    assert len(truster["workers"]) == 2
    assert all("does not exist" in (w["error"] or "") for w in truster["workers"])
    assert all(w["path"] == str(tiny_model.adapters["truster"]) for w in truster["workers"])

    # Unload everywhere.
    gone = httpx.delete(f"{gateway}/admin/adapters/asker", headers=ADMIN, timeout=60)
    assert gone.status_code == 204, gone.text
    asker = _roles(gateway)["asker"]
    assert asker["loaded"] is False and not any(w["loaded"] for w in asker["workers"])

    for worker in (first, second):
        assert _gauge(worker, "sciserve_worker_adapters_loaded") == 2  # policy, truster
        assert _gauge(worker, "sciserve_worker_adapter_failures") == 1  # truster's path

    # The pool still solves with its new adapters.
    headers = api_key_headers(redis_prefix, "solve")
    solved = httpx.post(f"{gateway}/solve", json={"problem": "2 + 2?"}, headers=headers, timeout=60)
    assert solved.status_code == 200, solved.text

    # A named adapter beside the roles' own reaches every worker; requests choose it.
    named = {**body, "name": "policy-v2", "path": asker_weights}
    added = httpx.post(f"{gateway}/admin/adapters", json=named, headers=ADMIN, timeout=60)
    assert added.status_code == 200, added.text
    assert added.json()["name"] == "policy-v2" and added.json()["loaded"] is True
    for url in (first, second):
        mine = {a["name"]: a for a in httpx.get(f"{url}/admin/adapters", headers=ADMIN).json()}
        assert mine["policy-v2"]["loaded"] and mine["policy"]["loaded"]
    chosen = httpx.post(
        f"{gateway}/solve",
        json={"problem": "2 + 2?", "adapters": {"policy": "policy-v2"}, "return_trace": True},
        headers=headers,
        timeout=60,
    )
    assert chosen.status_code == 200, chosen.text
    assert "policy-v2" in {event["role"] for event in chosen.json()["trace"]}


def test_an_invalid_body_is_a_422_and_keys_are_checked(spawn: Spawn) -> None:
    _, gateway = spawn("gateway", admin_key=ADMIN_KEY)
    bad = httpx.post(
        f"{gateway}/admin/adapters",
        json={"role": "critic", "path": "/x", "base_model": "m", "rank": 8},
        headers=ADMIN,
    )
    assert bad.status_code == 422 and "role" in bad.text
    wrong_key = httpx.get(f"{gateway}/admin/adapters", headers={"X-Admin-Key": "nope"})
    assert wrong_key.status_code == 403
    # No worker yet: the pool view lists every role, none loaded anywhere.
    started = time.monotonic()
    roles = _roles(gateway)
    assert set(roles) == {"policy", "asker", "truster"}
    assert all(r["workers"] == [] and r["loaded"] is False for r in roles.values())
    assert time.monotonic() - started < 5


def test_jobs_needing_an_adapter_a_worker_failed_to_load_go_to_its_peer(
    spawn: Spawn, redis_prefix: str, tiny_model: TinyModel, tmp_path: Path
) -> None:
    """Two workers deployed differently: the second allows LoRA rank 4 only (and starts
    with no adapters), so the pool's rank-8 policy loads on the first and fails on the
    second. Every job needs the policy: all of them run on the first worker, the second
    hands back the ones it claims, and none is lost or failed."""
    _, gateway = spawn("gateway", admin_key=ADMIN_KEY)
    _, healthy = spawn("worker", admin_key=ADMIN_KEY)
    no_adapters = tmp_path / "no-adapters.json"
    no_adapters.write_text(json.dumps({"adapters": {}}))
    _, limited = spawn("worker", admin_key=ADMIN_KEY, adapter_registry=no_adapters, max_lora_rank=4)
    body = {
        "role": "policy",
        "path": str(tiny_model.adapters["asker"]),
        "base_model": str(tiny_model.model_dir),
        "rank": tiny_model.rank,
    }
    loaded = httpx.post(f"{gateway}/admin/adapters", json=body, headers=ADMIN, timeout=60)
    assert loaded.status_code == 200, loaded.text
    states = {w["worker"]: w for w in loaded.json()["workers"]}
    assert len(states) == 2
    assert sorted(w["error"] is None for w in states.values()) == [False, True]
    assert any("max_lora_rank=4" in (w["error"] or "") for w in states.values())
    time.sleep(2)  # the limited worker reads its peer's report (polled every second)

    headers = api_key_headers(redis_prefix, "solve")

    def solve(i: int) -> int:
        problem = {"problem": f"{i} + {i}?"}
        answer = httpx.post(f"{gateway}/solve", json=problem, headers=headers, timeout=120)
        return answer.status_code

    with ThreadPoolExecutor(12) as pool:  # more than the healthy worker's 4 slots
        statuses = list(pool.map(solve, range(12)))
    assert statuses == [200] * 12
    assert _jobs(limited, "succeeded") == 0
    assert _jobs(limited, "declined") >= 1  # it claimed some and handed them back
    assert _jobs(healthy, "succeeded") == 12
