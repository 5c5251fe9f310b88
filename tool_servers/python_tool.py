"""The `python` tool server: AWL's `write_and_run_code(thought, code)` in the sandbox."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tool_servers.base import Tool, ToolArguments
from tool_servers.sandbox.limits import layers
from tool_servers.sandbox.pool import SandboxPool

MAX_CODE_CHARS = 20_000


class WriteAndRunCode(ToolArguments):
    thought: str = Field(default="", max_length=4000, description="Why this code; not run.")
    code: str = Field(
        min_length=1,
        max_length=MAX_CODE_CHARS,
        description="Python to run. Print what you need. Allowed imports: math, cmath, numpy, "
        "scipy, sympy, mpmath, fractions, statistics, decimal, itertools, functools, "
        "collections, random, re, datetime, heapq, bisect, json, numbers.",
    )


def python_tools(pool: SandboxPool) -> list[Tool]:
    """The tool bound to one sandbox pool."""

    async def write_and_run_code(args: WriteAndRunCode) -> dict[str, Any]:
        result = await pool.run(args.code)
        return {"stdout": result.stdout, "stderr": result.stderr, "status": result.status}

    return [
        Tool(
            name="write_and_run_code",
            description=(
                "Run a Python program in a sandbox and return its stdout, stderr and status "
                "(ok, error, timeout, killed). No files, network or processes. Limits: "
                f"{pool.limits.cpu_seconds} s CPU, {pool.limits.memory_bytes >> 20} MiB memory, "
                f"{pool.limits.output_bytes >> 10} KiB output; sandbox layers: {layers()}."
            ),
            arguments=WriteAndRunCode,
            run=write_and_run_code,
            timeout_s=pool.wall_seconds + 5,
        )
    ]
