"""The sandbox zygote takes its children with it: when the tool server goes away (its
pipe to the zygote closes, as when the server is SIGKILLed) or closes the pool, a run
still computing is killed at once instead of living on until its CPU limit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from tool_servers.sandbox.limits import Limits
from tool_servers.sandbox.pool import SandboxPool

BUSY = "while True:\n    pass\n"
LONG_LIMITS = {"cpu_seconds": 60, "memory_bytes": 512 * 1024 * 1024, "output_bytes": 65536}


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _state(pid: int) -> str | None:
    """The process's state letter (R running, S sleeping, Z zombie), None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return None


def _running(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if _running(p)}


def _busy_children(zygote: int) -> set[int]:
    """The zygote's children once one of them is burning CPU (the busy run)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = _children(zygote)
        if any(_state(child) == "R" for child in children):
            return children
        time.sleep(0.1)
    raise AssertionError("the busy run never started")


def test_a_closed_pipe_kills_the_zygote_and_a_busy_run() -> None:
    config = {"limits": LONG_LIMITS, "warm": 1, "wall_seconds": 60}
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tool_servers.sandbox.zygote", json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert zygote.stdin is not None
        zygote.stdin.write(json.dumps({"id": "busy", "code": BUSY}).encode() + b"\n")
        zygote.stdin.flush()
        children = _busy_children(zygote.pid)
        zygote.stdin.close()  # what the kernel does when the server dies
        assert zygote.wait(10) == 0
        assert _wait_gone(children, 2) == set(), "children outlived their zygote"
    finally:
        if zygote.poll() is None:
            zygote.kill()


def test_closing_the_pool_kills_a_busy_run() -> None:
    async def scenario() -> tuple[set[int], set[int]]:
        pool = SandboxPool(warm=1, limits=Limits(**LONG_LIMITS), wall_seconds=60)
        await pool.start()
        run = asyncio.create_task(pool.run(BUSY))
        assert pool._process is not None
        children = await asyncio.to_thread(_busy_children, pool._process.pid)
        await pool.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        return children, await asyncio.to_thread(_wait_gone, children, 2)

    children, survivors = asyncio.run(scenario())
    assert children and survivors == set(), "a run outlived the closed pool"
