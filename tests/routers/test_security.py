"""Keys, scopes, rate limit, body limit and Redis outages, against a real gateway
process and a real Redis (a private redis-server for the outage tests)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx

from entrypoints.embedded import free_port
from tests.conftest import Spawn, api_key_headers

SOLVE = {"problem": "2 + 2?"}


def test_missing_and_bad_keys_are_401(spawn: Spawn) -> None:
    _, gateway = spawn("gateway")
    missing = httpx.post(f"{gateway}/solve", json=SOLVE)
    assert missing.status_code == 401 and "needs an API key" in missing.json()["detail"]
    bad = httpx.post(f"{gateway}/jobs", json=SOLVE, headers={"Authorization": "Bearer sk-nope"})
    assert bad.status_code == 401 and "not valid" in bad.json()["detail"]
    assert httpx.get(f"{gateway}/jobs/x", headers={"X-API-Key": "sk-nope"}).status_code == 401


def test_scopes_guard_reveal_thoughts_and_admin(spawn: Spawn, redis_prefix: str) -> None:
    _, gateway = spawn("gateway")
    solver = api_key_headers(redis_prefix, "solve")
    revealer = api_key_headers(redis_prefix, "solve", "reveal_thoughts")
    admin = api_key_headers(redis_prefix, "admin")
    body = {**SOLVE, "reveal_thoughts": True}
    refused = httpx.post(f"{gateway}/jobs", json=body, headers=solver)
    assert refused.status_code == 403 and "reveal_thoughts" in refused.json()["detail"]
    assert httpx.post(f"{gateway}/jobs", json=body, headers=revealer).status_code == 202
    not_admin = httpx.get(f"{gateway}/admin/adapters", headers=solver)
    assert not_admin.status_code == 403 and "'admin' scope" in not_admin.json()["detail"]
    no_solve = httpx.post(f"{gateway}/jobs", json=SOLVE, headers=admin)
    assert no_solve.status_code == 403 and "'solve' scope" in no_solve.json()["detail"]
    # An admin key passes auth; this gateway manages the pool's adapters (no worker yet).
    pool = httpx.get(f"{gateway}/admin/adapters", headers=admin)
    assert pool.status_code == 200 and all(a["workers"] == [] for a in pool.json())


def test_rate_limit_is_429_with_retry_after(spawn: Spawn, redis_prefix: str) -> None:
    _, gateway = spawn("gateway", rate_limit_per_minute=3)
    headers = api_key_headers(redis_prefix, "solve")
    codes = [httpx.post(f"{gateway}/jobs", json=SOLVE, headers=headers) for _ in range(4)]
    assert [r.status_code for r in codes[:3]] == [202, 202, 202]
    assert codes[3].status_code == 429
    assert int(codes[3].headers["Retry-After"]) >= 1
    assert "Rate limit of 3 requests per minute" in codes[3].json()["detail"]
    other = api_key_headers(redis_prefix, "solve")  # limits are per key
    assert httpx.post(f"{gateway}/jobs", json=SOLVE, headers=other).status_code == 202


def test_body_limit_is_413(spawn: Spawn, redis_prefix: str) -> None:
    _, gateway = spawn("gateway", max_body_bytes=4096)
    headers = api_key_headers(redis_prefix, "solve")
    big = httpx.post(f"{gateway}/jobs", json={"problem": "x" * 5000}, headers=headers)
    assert big.status_code == 413 and "4096 bytes" in big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"problem": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    streamed = httpx.post(
        f"{gateway}/jobs", content=chunks(), headers={**headers, "content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert httpx.post(f"{gateway}/jobs", json=SOLVE, headers=headers).status_code == 202


def test_redis_outage_is_503_and_gateway_and_worker_recover(spawn: Spawn, tmp_path) -> None:
    binary = shutil.which("redis-server")
    assert binary
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"]  # fmt: skip

    def start_redis() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{gateway}/readyz", timeout=2).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not become ready"
            time.sleep(0.1)

    redis_url = f"redis://127.0.0.1:{port}/0"
    gateway_process, gateway = spawn("gateway", wait=False, redis_url=redis_url,
                                     require_api_key="false")  # fmt: skip
    server = start_redis()
    worker_process, _ = spawn("worker", redis_url=redis_url, require_api_key="false")
    assert httpx.post(f"{gateway}/solve", json=SOLVE, timeout=60).status_code == 200
    server.kill()
    server.wait(10)
    ready = httpx.get(f"{gateway}/readyz")
    assert ready.status_code == 503 and "Redis is unreachable" in ready.json()["detail"]
    assert str(port) not in ready.text, "the public readiness reason names Redis's address"
    for path in ("/solve", "/jobs"):
        down = httpx.post(f"{gateway}{path}", json=SOLVE, timeout=30)
        assert down.status_code == 503, down.text
        assert "Redis" in down.json()["detail"] and down.headers["Retry-After"]
        # The client gets a sentence; Redis's host and port stay in the logs.
        assert str(port) not in down.text and "127.0.0.1" not in down.text
    assert gateway_process.poll() is None
    server = start_redis()  # Redis is back, empty: the same processes serve again
    try:
        solved = httpx.post(f"{gateway}/solve", json=SOLVE, timeout=60)
        assert solved.status_code == 200, solved.text
        assert worker_process.poll() is None
    finally:
        server.kill()


def test_gateway_pointed_at_a_closed_port_is_not_ready(spawn: Spawn) -> None:
    _, gateway = spawn("gateway", wait=False, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                       require_api_key="false")  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            ready = httpx.get(f"{gateway}/readyz", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert ready.status_code == 503 and "Redis is unreachable" in ready.json()["detail"]
    down = httpx.post(f"{gateway}/solve", json=SOLVE, timeout=30)
    assert down.status_code == 503 and "Redis" in down.json()["detail"]
    assert httpx.get(f"{gateway}/healthz").status_code == 200
