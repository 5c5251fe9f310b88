"""The sandbox zygote: a process that has imported the allowed modules once and forks
one locked-down child per run.

Run as `python -m tool_servers.sandbox.zygote LIMITS_JSON`. It reads one JSON request
per line on stdin, `{"id", "code"}`, and writes one JSON line per finished run on
stdout, `{"id", "stdout", "stderr", "status", "reason"}`.

Why not multiprocessing's forkserver: it re-imports the parent's `__main__` in every
child, and the parent here is a web server. A single-threaded select loop keeps the
zygote simple: it never runs user code itself, it only forks, forwards and reaps.
It keeps `warm` children forked and waiting, so a run costs a socket round trip.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from tool_servers.sandbox.child import child_main, warm_up
from tool_servers.sandbox.limits import Limits


@dataclass
class Child:
    pid: int
    channel: socket.socket
    run_id: str | None = None
    deadline: float = 0.0
    received: list[bytes] = field(default_factory=list)


def fork_child(limits: Limits, keep: list[int]) -> Child:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: drop everything of the zygote's but its own channel
        ours.close()
        for fd in keep:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        child_main(theirs, limits)
    theirs.close()
    return Child(pid, ours)


def _exit_status(pid: int) -> int | None:
    """Reap the child; its wait status, or None if it is somehow still there."""
    for _ in range(200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)
    return None


def _verdict(child: Child, wall_seconds: float, timed_out: bool) -> dict[str, object]:
    raw = b"".join(child.received)
    status = _exit_status(child.pid)
    if timed_out:
        return {
            "stdout": "",
            "stderr": f"Killed: wall-clock limit of {wall_seconds:g} s",
            "status": "timeout",
            "reason": "wall",
        }
    if raw:
        try:
            result: dict[str, object] = json.loads(raw)
            return result
        except ValueError:
            pass
    signum = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
    if signum in (signal.SIGXCPU, signal.SIGKILL):
        return {
            "stdout": "",
            "stderr": "Killed: CPU time limit exceeded",
            "status": "timeout",
            "reason": "cpu",
        }
    return {
        "stdout": "",
        "stderr": f"Killed: the process ended abnormally (signal {signum})",
        "status": "killed",
        "reason": "crash",
    }


def serve(limits: Limits, warm: int, wall_seconds: float) -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    keep = [stdin.fileno(), stdout.fileno(), sys.stderr.fileno()]
    ready = [fork_child(limits, keep) for _ in range(warm)]
    running: dict[socket.socket, Child] = {}
    pending = b""
    while True:
        now = time.monotonic()
        timeout = min((c.deadline - now for c in running.values()), default=None)
        readable, _, _ = select.select(
            [stdin, *running], [], [], max(timeout, 0) if timeout is not None else None
        )
        for source in readable:
            if source is stdin:
                data = os.read(stdin.fileno(), 1 << 20)
                if not data:  # the server went away (even SIGKILLed): so do we and ours
                    _kill_all([*ready, *running.values()])
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    child = ready.pop(0) if ready else fork_child(limits, keep)
                    child.run_id = request["id"]
                    child.deadline = time.monotonic() + wall_seconds
                    try:
                        child.channel.sendall(request["code"].encode())
                        child.channel.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass  # the child is already gone; its verdict says why
                    running[child.channel] = child
                    ready.append(fork_child(limits, keep))
            else:
                assert isinstance(source, socket.socket)
                child = running[source]
                chunk = source.recv(1 << 20)
                if chunk:
                    child.received.append(chunk)
                    continue
                _finish(running.pop(source), stdout, wall_seconds, timed_out=False)
        now = time.monotonic()
        for channel, child in list(running.items()):
            if child.deadline <= now:
                os.kill(child.pid, signal.SIGKILL)
                _finish(running.pop(channel), stdout, wall_seconds, timed_out=True)


def _kill_all(children: list[Child]) -> None:
    """A run still computing would not notice its closed socket until its CPU limit."""
    for child in children:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        os.waitpid(child.pid, 0)


def _finish(child: Child, stdout: object, wall_seconds: float, timed_out: bool) -> None:
    result = _verdict(child, wall_seconds, timed_out)
    child.channel.close()
    line = json.dumps({"id": child.run_id, **result}).encode() + b"\n"
    stdout.write(line)  # type: ignore[attr-defined]
    stdout.flush()  # type: ignore[attr-defined]


def main() -> None:
    config = json.loads(sys.argv[1])
    limits = Limits(**config["limits"])
    warm_up()
    serve(limits, warm=config["warm"], wall_seconds=config["wall_seconds"])


if __name__ == "__main__":
    main()
