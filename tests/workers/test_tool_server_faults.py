"""A tool server killed in the middle of a call: the client retries the call, and with
the server gone the job's tool call ends as `tool_unavailable` (a 503 the model reads,
or the job's outcome with `tools: always`), never an internal error."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from contract.errors import ToolUnavailableError
from entrypoints.embedded import ServiceProcesses
from workers.tools.client import ToolClient

# About ten seconds of arithmetic in the sandbox: long enough to kill the server mid-call.
SLOW_CODE = "total = 0\nfor i in range(200_000_000):\n    total += i\nprint(total)"


def test_a_tool_server_killed_mid_call_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    processes = ServiceProcesses(tmp_path, {"SCISERVE_SANDBOX_CPU_S": "30",
                                            "SCISERVE_SANDBOX_WALL_S": "30"})  # fmt: skip
    try:
        process, url = processes.start_tool_server("python")

        def kill_soon() -> None:
            time.sleep(1.5)
            process.kill()

        async def call() -> None:
            client = ToolClient({"python": url}, timeout_s=60, attempts=3)
            try:
                await client.invoke("write_and_run_code", {"thought": "sum", "code": SLOW_CODE})
            finally:
                await client.aclose()

        threading.Thread(target=kill_soon, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(ToolUnavailableError, match="unreachable after 3 attempts") as raised:
            asyncio.run(call())
        assert url not in str(raised.value), "the tool server's internal URL leaks"
        assert time.monotonic() - started < 20, "the dropped call is noticed, not waited out"
    finally:
        processes.stop_all()
