"""Compute budgets and keys without Redis, over the real gateway, queue and worker.

`CountingEngine` (tests/workers/test_loop.py) is the named engine double: these
tests are about what the gateway refuses before any engine work, and count engine
calls to show that a refused request cost none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth import SqliteKeyStore
from contract.schemas import Strategy
from contract.settings import Settings
from entrypoints.embedded import create_embedded_app
from tests.workers.test_loop import CountingEngine


def _settings(**values: object) -> Settings:
    return Settings(model="test-double", mount_tools=False, **values)  # type: ignore[arg-type]


def test_a_request_above_the_ceiling_is_422_with_its_cost_and_the_limit() -> None:
    engine = CountingEngine()
    with TestClient(create_embedded_app(_settings(max_request_tokens=10_000), engine)) as client:
        body = {"problem": "2+2?", "max_tokens": 1000, "strategy": {"samples": 8, "attempts": 2}}
        refused = client.post("/jobs", json=body)
        fits = client.post("/solve", json={"problem": "2+2?", "max_tokens": 1000})
    assert refused.status_code == 422
    # 8 samples x (a tool loop of 4 calls + its answer turn, then one SCoRe round).
    assert "up to 48000 tokens (48 generations x 1000 max_tokens" in refused.json()["detail"]
    assert "limit of 10000" in refused.json()["detail"]
    assert fits.status_code == 200
    assert engine.calls == 1


@pytest.mark.parametrize(
    ("strategy", "generations", "tool_runs"),
    [
        ({"tools": "never"}, 1, 0),
        ({"tools": "never", "think": True}, 2, 0),  # TPO's resample of a broken format
        ({}, 5, 4),  # adaptive: up to 4 tool calls, then the answer turn
        ({"samples": 16}, 80, 64),
        ({"plan": True}, 8, 6),  # the plan, up to 6 steps, the answer
        ({"tools": "never", "art": True, "attempts": 2}, 5, 0),  # + SCoRe + ask/refine/trust
    ],
)
def test_the_worst_case_counts_every_generation_and_tool_run(
    strategy: dict[str, object], generations: int, tool_runs: int
) -> None:
    """The budget charges what a strategy can really make (issue: compute was charged
    one generation per sample, ~5x under a tool loop's worst case)."""
    parsed = Strategy.model_validate(strategy)
    assert parsed.worst_case_generations(max_tool_calls=4) == generations
    assert parsed.worst_case_tool_calls(max_tool_calls=4) == tool_runs


def test_samples_64_with_tools_is_refused_by_the_ceiling_on_every_door() -> None:
    """One /v1 request with `extra_body.strategy.samples: 64` could trigger ~256
    sandbox runs and 64x(4+1) generations; the honest worst case is refused by the
    default ceiling on /v1 as on /solve."""
    engine = CountingEngine()
    with TestClient(create_embedded_app(_settings(), engine)) as client:
        body = {"problem": "2+2?", "strategy": {"samples": 64}}
        native = client.post("/solve", json=body)
        openai = client.post(
            "/v1/chat/completions",
            json={
                "model": "sciserve-direct",
                "messages": [{"role": "user", "content": "2+2?"}],
                "strategy": {"samples": 64, "tools": "auto"},
            },
        )
        metrics = client.get("/metrics").text
    assert native.status_code == 422 and "327680 tokens" in native.json()["detail"]
    assert openai.status_code == 400, openai.text
    assert "327680 tokens" in openai.json()["error"]["message"]
    assert engine.calls == 0
    for door in ("solve", "openai"):
        assert (
            f'sciserve_budget_refusals_total{{door="{door}",reason="request_ceiling"}}' in metrics
        )


def test_max_tokens_past_the_context_is_422() -> None:
    with TestClient(create_embedded_app(_settings(max_model_len=512), CountingEngine())) as client:
        response = client.post("/solve", json={"problem": "2+2?", "max_tokens": 512})
    assert response.status_code == 422
    assert "context of 512 tokens" in response.json()["detail"]


def test_keys_from_a_local_store_without_redis(tmp_path: Path) -> None:
    """One box exposed: SCISERVE_KEY_STORE makes keys required, with no Redis at all,
    and the per-key token budget (TPM) is charged each request's worst case."""
    store = tmp_path / "keys.sqlite"
    created = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "keys", "create", "alice", "--scope", "solve"],
        env={"SCISERVE_KEY_STORE": str(store), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    key = created.stdout.strip()
    assert key.startswith("sk-") and key not in store.read_bytes().decode("latin-1")
    settings = _settings(key_store=store, tokens_per_minute=300, default_max_tokens=100)
    with TestClient(create_embedded_app(settings, CountingEngine())) as client:
        missing = client.post("/solve", json={"problem": "2+2?"})
        wrong = client.post("/solve", json={"problem": "2+2?"}, headers={"X-API-Key": "sk-nope"})
        auth = {"Authorization": f"Bearer {key}"}
        direct = {"problem": "2+2?", "strategy": {"tools": "never"}}  # worst case: 100 tokens
        spent = [client.post("/solve", json=direct, headers=auth) for _ in range(4)]
        metrics = client.get("/metrics").text
    assert missing.status_code == 401 and wrong.status_code == 401
    assert [r.status_code for r in spent] == [200, 200, 200, 429]
    assert "Token budget of 300 tokens per minute" in spent[-1].json()["detail"]
    assert spent[-1].headers["Retry-After"]
    assert 'sciserve_budget_refusals_total{door="solve",reason="token_budget"}' in metrics


async def test_the_sqlite_store_creates_looks_up_and_revokes(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "keys.sqlite")
    key = await store.create("bob", ["solve", "admin"])
    principal = await store.lookup(key)
    assert principal is not None and principal.scopes == {"solve", "admin"}
    assert await store.lookup(key + "x") is None
    assert await store.revoke("bob") == 1
    assert await store.lookup(key) is None
