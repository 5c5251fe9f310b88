"""The server's handle on the sandbox zygote (see `zygote.py`).

`await pool.run(code)` sends one request line to the zygote and waits for its answer
line. If the zygote itself dies, waiting runs end as `killed` and the next run starts
a new zygote, so one bad run can never take the tool server down with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tool_servers.metrics import SANDBOX_KILLS
from tool_servers.sandbox.limits import Limits

CLOSE_WAIT_S = 5.0  # for the zygote to kill its children and exit on a closed stdin
# The folder that holds `tool_servers`, whether a checkout or site-packages.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def zygote_environment() -> dict[str, str]:
    """The zygote's whole environment, built from nothing and never copied from the
    server's: the server holds the admin key, the Redis URL, the tool token and whatever
    its platform injects, and every run would inherit them (`os.environ` in a child
    that got past RestrictedPython). This is what the interpreter needs to import the
    sandbox and run single-threaded BLAS; `LD_LIBRARY_PATH` passes through because
    libseccomp or BLAS may live where only it finds them."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",  # set, so that Python does not coerce the C locale itself
        "PYTHONPATH": str(PACKAGE_ROOT),
        "PYTHONSAFEPATH": "1",  # imports never come from the server's working directory
        "PYTHONNOUSERSITE": "1",
        # a forked child must not inherit a BLAS thread pool
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if library_path := os.environ.get("LD_LIBRARY_PATH"):
        environment["LD_LIBRARY_PATH"] = library_path
    return environment


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str
    status: str  # ok | error | timeout | killed
    reason: str | None
    elapsed_ms: float


class SandboxPool:
    # What `python -m` runs as the zygote (the isolation tests run one whose children
    # skip RestrictedPython, to attack the OS layer alone).
    zygote_module = "tool_servers.sandbox.zygote"

    def __init__(self, warm: int = 4, limits: Limits | None = None, wall_seconds: float = 10.0):
        self.warm = warm
        self.limits = limits or Limits()
        self.wall_seconds = wall_seconds
        self._process: asyncio.subprocess.Process | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, object]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the zygote (about a second: it imports numpy, scipy and sympy)."""
        async with self._lock:
            if self._process is not None and self._process.returncode is None:
                return
            config = {
                "limits": dataclasses.asdict(self.limits),
                "warm": self.warm,
                "wall_seconds": self.wall_seconds,
            }
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.zygote_module,
                json.dumps(config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=zygote_environment(),
                limit=1 << 24,
            )
            self._reader = asyncio.create_task(self._read_answers(self._process))

    async def close(self) -> None:
        """Closing the zygote's stdin makes it kill its children (a run still computing
        would otherwise outlive it until its CPU limit); a zygote that does not exit
        in time is killed."""
        process = self._process
        if process is not None and process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), CLOSE_WAIT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read_answers(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            answer = json.loads(line)
            future = self._waiting.pop(answer.pop("id"), None)
            if future is not None and not future.done():
                future.set_result(answer)
        await process.wait()
        for future in self._waiting.values():  # the zygote died: nobody will answer these
            if not future.done():
                future.set_result(
                    {
                        "stdout": "",
                        "stderr": "Killed: the sandbox restarted",
                        "status": "killed",
                        "reason": "crash",
                    }
                )
        self._waiting.clear()

    async def run(self, code: str) -> RunResult:
        t0 = time.perf_counter()
        if self._process is None or self._process.returncode is not None:
            await self.start()
        assert self._process is not None and self._process.stdin is not None
        run_id = str(next(self._ids))
        future: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = future
        self._process.stdin.write(json.dumps({"id": run_id, "code": code}).encode() + b"\n")
        await self._process.stdin.drain()
        answer = await asyncio.wait_for(future, timeout=self.wall_seconds + 30)
        reason = answer.get("reason")
        if reason:
            SANDBOX_KILLS.labels(reason=str(reason)).inc()
        return RunResult(
            stdout=str(answer["stdout"]),
            stderr=str(answer["stderr"]),
            status=str(answer["status"]),
            reason=str(reason) if reason else None,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
        )
