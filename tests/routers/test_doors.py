"""One door for every client: the same refusals, budgets and idempotency on `/solve`,
`/jobs` and `/v1/chat/completions` (plain and streamed), and jobs that belong to the
key that submitted them, over the real gateway, queue and worker with keys in a real
SQLite store.

`CountingEngine` (tests/workers/test_loop.py) is the named engine double: these tests
are about what the gateway admits, charges and shows, and count engine calls to show
that a refused or replayed request cost none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.auth import SqliteKeyStore
from contract.settings import Settings
from entrypoints.embedded import create_embedded_app
from tests.conftest import ADMIN_KEY, Spawn, api_key_headers
from tests.workers.test_loop import CountingEngine
from workers.engines.base import Completion, GenerationRequest
from workers.prompts import RESPONSE_MARKER, THOUGHT_MARKER

PROBLEM = "2 + 2?"
# A direct answer of 100 tokens at most: its worst case is exactly 100 tokens.
DIRECT: dict[str, Any] = {"strategy": {"tools": "never"}, "max_tokens": 100}


@dataclass(frozen=True)
class Door:
    name: str
    path: str
    openai: bool = False
    stream: bool = False

    def body(self, problem: str = PROBLEM) -> dict[str, Any]:
        if not self.openai:
            return {"problem": problem, **DIRECT}
        return {
            "model": "sciserve-direct",
            "messages": [{"role": "user", "content": problem}],
            "max_tokens": 100,
            "stream": self.stream,
        }

    def error_message(self, response: Any) -> str:
        """The door's error body shape: OpenAI's on /v1, the native one elsewhere."""
        body = response.json()
        if self.openai:
            assert set(body) == {"error"}, body
            assert set(body["error"]) == {"message", "type", "param", "code"}, body
            return str(body["error"]["message"])
        assert isinstance(body["detail"], str), body
        return str(body["detail"])

    def job_id(self, response: Any) -> str:
        if self.stream:
            for line in response.text.splitlines():
                if line.startswith("data: {"):
                    return str(json.loads(line[6:])["sciserve"]["job_id"])
            raise AssertionError(f"no chunk in {response.text!r}")
        body = response.json()
        return str(body["sciserve"]["job_id"] if self.openai else body["id"])


DOORS = [
    Door("solve", "/solve"),
    Door("jobs", "/jobs"),
    Door("openai", "/v1/chat/completions", openai=True),
    Door("openai-stream", "/v1/chat/completions", openai=True, stream=True),
]
OK = {"solve": 200, "jobs": 202, "openai": 200, "openai-stream": 200}


class Keys:
    """Keys of a real SQLite store, created the way `sciserve keys create` does."""

    def __init__(self, path: Path):
        self.store = SqliteKeyStore(path)

    def headers(self, *scopes: str) -> dict[str, str]:
        key = asyncio.run(self.store.create("same-name", list(scopes)))
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Keys, CountingEngine]]:
    engine = CountingEngine()
    keys = Keys(tmp_path / "keys.sqlite")
    settings = Settings(
        model="test-double",
        mount_tools=False,
        key_store=tmp_path / "keys.sqlite",
        tokens_per_minute=150,  # one 100-token request per key and minute
        admin_key=ADMIN_KEY,  # type: ignore[arg-type]
    )
    with TestClient(create_embedded_app(settings, engine)) as client:
        yield client, keys, engine


# The door table: each row is sent through every door. Cells that do not apply to a
# door that takes work (admin, events) are covered by the ownership tests below.
CASES = ["no_key", "bad_key", "wrong_scope", "over_budget", "replayed", "reused_other_body"]


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
@pytest.mark.parametrize("case", CASES)
def test_every_door_refuses_and_replays_alike(
    service: tuple[TestClient, Keys, CountingEngine], door: Door, case: str
) -> None:
    client, keys, engine = service
    solver = keys.headers("solve")
    if case == "no_key":
        response = client.post(door.path, json=door.body())
        assert response.status_code == 401
        assert "needs an API key" in door.error_message(response)
    elif case == "bad_key":
        response = client.post(door.path, json=door.body(), headers={"X-API-Key": "sk-nope"})
        assert response.status_code == 401
        assert "not valid" in door.error_message(response)
    elif case == "wrong_scope":
        response = client.post(door.path, json=door.body(), headers=keys.headers("admin"))
        assert response.status_code == 403
        assert "'solve' scope" in door.error_message(response)
    elif case == "over_budget":
        first = client.post(door.path, json=door.body(), headers=solver)
        assert first.status_code == OK[door.name], first.text
        second = client.post(door.path, json=door.body("3 + 3?"), headers=solver)
        assert second.status_code == 429
        assert "Token budget of 150 tokens per minute" in door.error_message(second)
        assert int(second.headers["Retry-After"]) >= 1
        metrics = client.get("/metrics").text
        label = "openai" if door.openai else door.name
        assert f'sciserve_budget_refusals_total{{door="{label}",reason="token_budget"}}' in metrics
    elif case == "replayed":
        headers = {**solver, "Idempotency-Key": "k1"}
        first = client.post(door.path, json=door.body(), headers=headers)
        replay = client.post(door.path, json=door.body(), headers=headers)
        assert first.status_code == replay.status_code == OK[door.name], replay.text
        assert door.job_id(first) == door.job_id(replay)
        assert engine.calls == 1
        # Not charged again: the key's one request per minute is still left for another job.
        other = client.post(door.path, json=door.body("3 + 3?"), headers=solver)
        assert other.status_code == 429, "the replay was charged a second time"
    else:
        headers = {**solver, "Idempotency-Key": "k2"}
        first = client.post(door.path, json=door.body(), headers=headers)
        assert first.status_code == OK[door.name]
        other = client.post(door.path, json=door.body("3 + 3?"), headers=headers)
        assert other.status_code == (400 if door.openai else 422)
        message = door.error_message(other)
        assert "'k2' was used with a different request body" in message
        assert door.job_id(first) not in message


def test_an_idempotency_key_is_per_key_not_per_name(
    service: tuple[TestClient, Keys, CountingEngine],
) -> None:
    """Two keys with the same free-text name (and names that would join to the same
    `name:key` string) never share an Idempotency-Key's job."""
    client, keys, _ = service
    alice, also_alice = keys.headers("solve"), keys.headers("solve")
    body = {"problem": PROBLEM, **DIRECT}
    first = client.post("/jobs", json=body, headers={**alice, "Idempotency-Key": "k"})
    second = client.post("/jobs", json=body, headers={**also_alice, "Idempotency-Key": "k"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]


def _job(client: TestClient, headers: dict[str, str], **extra: Any) -> str:
    response = client.post("/jobs", json={"problem": PROBLEM, **DIRECT, **extra}, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_a_job_belongs_to_its_key(service: tuple[TestClient, Keys, CountingEngine]) -> None:
    client, keys, _ = service
    owner, stranger = keys.headers("solve"), keys.headers("solve")
    job_id = _job(client, owner)
    for method, path in (
        ("GET", f"/jobs/{job_id}"),
        ("DELETE", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/events"),
    ):
        refused = client.request(method, path, headers=stranger)
        assert refused.status_code == 404, (method, path, refused.text)
        unknown = f"No job with id {job_id!r} (unknown, or its result expired)."
        assert refused.json()["detail"] == unknown  # the same as an unknown id
    seen = client.get(f"/jobs/{job_id}", headers=owner)
    assert seen.status_code == 200 and seen.json()["id"] == job_id


class ThinkingEngine(CountingEngine):
    """Test double: answers in TPO's format (a thought, then the response)."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        self.calls += 1
        text = f"{THOUGHT_MARKER} two and two make four. {RESPONSE_MARKER} \\boxed{{4}}"
        return [Completion([text], [list(range(64))], 12, ["stop"]) for _ in requests]


def test_thoughts_need_the_scope_when_read(tmp_path: Path) -> None:
    """A key that loses `reveal_thoughts` after submitting no longer reads thoughts."""
    keys = Keys(tmp_path / "keys.sqlite")
    settings = Settings(model="test-double", mount_tools=False, key_store=tmp_path / "keys.sqlite")
    key = asyncio.run(keys.store.create("thinker", ["solve", "reveal_thoughts"]))
    headers = {"Authorization": f"Bearer {key}"}
    think = {"strategy": {"tools": "never", "think": True}, "reveal_thoughts": True}
    with TestClient(create_embedded_app(settings, ThinkingEngine())) as client:
        solved = client.post(
            "/solve", json={"problem": PROBLEM, **think, "return_trace": True}, headers=headers
        )
        assert solved.status_code == 200, solved.text
        assert "two and two" in solved.json()["thoughts"]
        job_id = solved.json()["id"]
        # Re-scoped: the same key (same id) without reveal_thoughts.
        keys.store._execute("UPDATE api_keys SET scopes = ? WHERE name = ?", '["solve"]', "thinker")
        status = client.get(f"/jobs/{job_id}", headers=headers).json()
    assert status["result"]["thoughts"] is None
    assert "two and two" not in str(status["result"]["trace"])


def test_the_result_cache_is_per_key_and_per_adapter_generation(tmp_path: Path) -> None:
    engine = CountingEngine()
    keys = Keys(tmp_path / "keys.sqlite")
    settings = Settings(
        model="test-double", mount_tools=False, key_store=tmp_path / "keys.sqlite",
        result_cache=True, admin_key=ADMIN_KEY,  # type: ignore[arg-type]
    )  # fmt: skip
    with TestClient(create_embedded_app(settings, engine)) as client:
        alice, bob = keys.headers("solve"), keys.headers("solve")
        first, again = _job(client, alice), _job(client, alice)
        bobs = _job(client, bob)
        assert first == again, "the cache answers one key's identical requests once"
        assert bobs != first, "another key never receives, shares or cancels this key's job"
        client.get(f"/jobs/{first}", headers=alice)
        unloaded = client.delete("/admin/adapters/policy", headers={"X-Admin-Key": ADMIN_KEY})
        assert unloaded.status_code == 204, unloaded.text
        after = _job(client, alice)
        assert after != first, "an answer cached before an adapter change was served after it"


@pytest.mark.parametrize("header", ["", " "])
def test_an_empty_admin_key_or_header_never_admits(tmp_path: Path, header: str) -> None:
    settings = Settings(model="test-double", mount_tools=False, admin_key="")  # type: ignore[arg-type]
    with TestClient(create_embedded_app(settings, CountingEngine())) as client:
        response = client.get("/admin/adapters", headers={"X-Admin-Key": header})
        missing = client.get("/admin/adapters")
    assert response.status_code == 403
    assert missing.status_code == 403 and "disabled" in missing.json()["detail"]


def test_a_job_belongs_to_its_key_in_a_pool(spawn: Spawn, redis_prefix: str) -> None:
    """The same over the Redis deployment: the owner is stored with the job in Redis,
    so any gateway of the pool refuses another key's reads and cancels."""
    _, gateway = spawn("gateway")
    owner = api_key_headers(redis_prefix, "solve")
    stranger = api_key_headers(redis_prefix, "solve")
    submitted = httpx.post(f"{gateway}/jobs", json={"problem": PROBLEM}, headers=owner)
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    assert httpx.get(f"{gateway}/jobs/{job_id}", headers=stranger).status_code == 404
    assert httpx.delete(f"{gateway}/jobs/{job_id}", headers=stranger).status_code == 404
    assert httpx.get(f"{gateway}/jobs/{job_id}/events", headers=stranger).status_code == 404
    assert httpx.get(f"{gateway}/jobs/{job_id}", headers=owner).json()["status"] == "queued"
    replay = {**owner, "Idempotency-Key": "k"}
    first = httpx.post(f"{gateway}/jobs", json={"problem": PROBLEM}, headers=replay)
    other = httpx.post(
        f"{gateway}/jobs", json={"problem": PROBLEM}, headers={**stranger, "Idempotency-Key": "k"}
    )
    assert first.json()["id"] != other.json()["id"]
    cancelled = httpx.delete(f"{gateway}/jobs/{job_id}", headers=owner)
    assert cancelled.status_code == 200 and cancelled.json()["error_code"] == "cancelled"
