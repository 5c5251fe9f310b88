"""Chaos against real processes: a gateway and a worker (`sciserve gateway|worker`, the
tiny model on the transformers engine) over a private Redis server that the test
kills or freezes. No accepted job may be lost or failed, and no API call may hang.

- SIGKILL with AOF (`appendfsync always`), restarted on the same files: every
  accepted job succeeds, and its outcome is written once.
- SIGSTOP for 20 s: every API call answers within 5 s meanwhile (a 503 with
  Retry-After when it needs Redis), and the jobs finish after SIGCONT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.auth import RedisKeyStore
from entrypoints.embedded import ServiceProcesses, free_port
from jobqueue.redis_streams import connect
from workers.models.tiny import TinyModel

JOBS = 10
# Slow enough on the tiny model that the fault lands while jobs run.
BODY = {"problem": "Count to ten.", "strategy": {"tools": "never"}, "max_tokens": 48}


class PrivateRedis:
    """A redis-server of our own, with AOF on, that the test may kill and restart."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--appendonly", "yes",
             "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def pool(tiny_model: TinyModel, redis_server: PrivateRedis, tmp_path: Path) -> Iterator[str]:
    """A gateway and one worker on the private Redis; yields the gateway's URL."""
    processes = ServiceProcesses(
        tmp_path,
        {
            "SCISERVE_REDIS_URL": redis_server.url,
            "SCISERVE_MODEL": str(tiny_model.model_dir),
            "SCISERVE_ADAPTER_REGISTRY": str(tiny_model.registry),
            "SCISERVE_ENGINE": "hf",
            "SCISERVE_DTYPE": "float32",
            "SCISERVE_VISIBILITY_TIMEOUT_S": "5",
            "SCISERVE_WORKER_CONCURRENCY": "2",
            "SCISERVE_RATE_LIMIT_PER_MINUTE": "1000000",
        },
    )
    try:
        processes.start("worker")
        _, url = processes.start("gateway")
        yield url
    finally:
        processes.stop_all()


def _key(redis_url: str) -> dict[str, str]:
    async def create() -> str:
        client = connect(redis_url)
        try:
            return await RedisKeyStore(client, "sciserve").create("chaos", ["solve"])
        finally:
            await client.aclose()

    return {"Authorization": f"Bearer {asyncio.run(create())}"}


def _submit(client: httpx.Client, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = client.post("/jobs", json=BODY)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def _wait_finished(client: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    final: dict[str, dict] = {}
    while len(final) < len(ids):
        assert time.monotonic() < deadline, f"unfinished: {set(ids) - set(final)}"
        for job_id in set(ids) - set(final):
            try:
                response = client.get(f"/jobs/{job_id}")
            except httpx.TransportError:
                continue
            if response.status_code == 200 and response.json()["status"] in ("succeeded", "failed"):
                final[job_id] = response.json()
        time.sleep(0.2)
    return final


def test_redis_sigkill_with_aof_loses_and_fails_no_accepted_job(
    pool: str, redis_server: PrivateRedis
) -> None:
    with httpx.Client(base_url=pool, headers=_key(redis_server.url), timeout=30) as client:
        ids = _submit(client, JOBS)
        time.sleep(1.0)  # some jobs are running, some queued
        redis_server.kill()
        time.sleep(2.0)
        redis_server.start()  # the same AOF files
        final = _wait_finished(client, ids, timeout=240)
    failed = {k: v for k, v in final.items() if v["status"] != "succeeded"}
    assert not failed, failed
    events = [
        subprocess.run(
            ["redis-cli", "-p", str(redis_server.port), "lrange", f"sciserve:job:{i}:events",
             "0", "-1"], capture_output=True, text=True, check=True,
        ).stdout.count('"type": "done"')
        for i in ids
    ]  # fmt: skip
    assert events == [1] * JOBS, "each job's outcome is written exactly once"


def test_redis_frozen_api_calls_answer_within_five_seconds(
    pool: str, redis_server: PrivateRedis
) -> None:
    with httpx.Client(base_url=pool, headers=_key(redis_server.url), timeout=30) as client:
        ids = _submit(client, 4)
        redis_server.signal(signal.SIGSTOP)
        calls = {
            "healthz": lambda: client.get("/healthz"),
            "readyz": lambda: client.get("/readyz"),
            "metrics": lambda: client.get("/metrics"),
            "status": lambda: client.get(f"/jobs/{ids[0]}"),
            "submit": lambda: client.post("/jobs", json=BODY),
            "solve": lambda: client.post("/solve", json={**BODY, "timeout_s": 60}),
        }
        longest: dict[str, float] = {}
        codes: dict[str, int] = {}
        frozen_until = time.monotonic() + 20
        with ThreadPoolExecutor(len(calls)) as threads:
            while time.monotonic() < frozen_until:
                started = {name: time.monotonic() for name in calls}
                futures = {name: threads.submit(call) for name, call in calls.items()}
                for name, future in futures.items():
                    response = future.result(30)
                    elapsed = time.monotonic() - started[name]
                    longest[name] = max(longest.get(name, 0.0), elapsed)
                    codes[name] = response.status_code
                    if response.status_code == 503:
                        assert response.headers.get("Retry-After"), name
                time.sleep(1.0)
        redis_server.signal(signal.SIGCONT)
        final = _wait_finished(client, ids, timeout=240)
    print(f"longest API wait while Redis was frozen (s): {longest}; last statuses: {codes}")
    assert max(longest.values()) < 5.0, longest
    assert codes["healthz"] == 200 and codes["metrics"] == 200
    assert {codes[name] for name in ("readyz", "status", "submit", "solve")} == {503}, codes
    assert all(v["status"] == "succeeded" for v in final.values()), final
