"""The sandbox zygote: a process that has imported the allowed modules once and hands
one locked-down child to each run.

Run as `python -m tool_servers.sandbox.zygote LIMITS_JSON`. It reads one JSON request
per line on stdin, `{"id", "code"}`, and writes one JSON line per finished run on
stdout, `{"id", "stdout", "stderr", "status", "reason"}`.

Why not multiprocessing's forkserver: it re-imports the parent's `__main__` in every
child, and the parent here is a web server. A single-threaded select loop keeps the
zygote simple: it never runs user code itself, it only forwards and reaps. It keeps
`warm` children forked and waiting, so a run costs a socket round trip.

It is two processes, so that no child ever holds another run's data:
- the dispatcher (this process) reads the requests, sends each to a warm child, reads
  its answer and kills it at the wall-clock limit. It holds every run's code and output,
  so it forks no sandbox child itself: a fork copies the whole memory, live objects and
  freed heap alike, and raw code in the child could read it (e.g. `gc.get_objects()`).
- the forker, forked from the dispatcher before the first request (its memory holds
  the imported modules and nothing of any run), makes the children. For each it creates
  the channel and forks an intermediate process that forks the child and exits; the
  dispatcher gets its end of the channel and the child's pid over a Unix socket. The
  dispatcher is a child subreaper, so the orphaned child becomes its child: it can still
  kill it, reap it and see how it ended (SIGXCPU, SIGKILL).
The zygote makes itself undumpable (inherited by the forker and the children), so that
no process of its uid can read the runs' data out of its memory.

Nothing a child sends is trusted: its answer must be one JSON object with the expected
fields (any other key, an `id` of another run included, is dropped), and a child that
sends more than any honest answer could be is killed.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import NoReturn

from tool_servers.sandbox.child import (
    child_main,
    close_inherited,
    forbid_tracing,
    prctl,
    warm_up,
)
from tool_servers.sandbox.eval_routes import close_eval_routes
from tool_servers.sandbox.limits import Limits

PR_SET_CHILD_SUBREAPER = 36
EXIT_WAIT_S = 0.5  # for a child that has answered to exit before it is killed
STATUSES = frozenset({"ok", "error", "killed"})  # what a child may report itself
REASONS = frozenset({"output", "memory", "crash"})


@dataclass
class Child:
    pid: int
    channel: socket.socket
    run_id: str | None = None
    deadline: float = 0.0
    received: list[bytes] = field(default_factory=list)
    size: int = 0


class Forker:
    """The dispatcher's handle on the forker process."""

    def __init__(self, limits: Limits):
        ours, theirs = socket.socketpair()
        self.pid = os.fork()
        if self.pid == 0:
            ours.close()
            _forker_main(theirs, limits)
        theirs.close()
        self.control = ours

    def fork_child(self) -> Child:
        self.control.sendall(b"f")
        message, fds, _, _ = socket.recv_fds(self.control, 8, 1)
        if len(message) != 8 or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise RuntimeError("the sandbox forker could not start a child")
        return Child(int.from_bytes(message, "little"), socket.socket(fileno=fds[0]))

    def close(self) -> None:
        self.control.close()  # the forker exits on the closed socket
        os.waitpid(self.pid, 0)


def _forker_main(control: socket.socket, limits: Limits) -> NoReturn:
    """Body of the forker: one child per byte the dispatcher sends, until it goes."""
    try:
        # Nothing of the dispatcher's but stderr, for tracebacks; 0 and 1 become
        # /dev/null, so that no stray print can reach the pipe made next.
        close_inherited({control.fileno(), 2})
        null = os.open(os.devnull, os.O_RDWR)
        for fd in {0, 1} - {null}:
            os.dup2(null, fd)
        pid_read, pid_write = os.pipe()
        while control.recv(1):
            ours, theirs = socket.socketpair()
            middle = os.fork()
            if middle == 0:
                _intermediate(theirs, pid_write, limits)
            theirs.close()
            _, middle_status = os.waitpid(middle, 0)  # once it is gone, the child is reparented
            if os.waitstatus_to_exitcode(middle_status) == 0:
                pid = os.read(pid_read, 8)
                socket.send_fds(control, [pid], [ours.fileno()])
            else:
                control.sendall(b"\0")  # no descriptor: the dispatcher raises
            ours.close()
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _intermediate(theirs: socket.socket, pid_write: int, limits: Limits) -> NoReturn:
    status = 1
    try:
        pid = os.fork()
        if pid == 0:
            child_main(theirs, limits)  # closes all but `theirs` first; never returns
        os.write(pid_write, pid.to_bytes(8, "little"))
        status = 0
    finally:
        os._exit(status)


def _reap(pid: int) -> int:
    """The child's wait status. An honest child exits right after its answer; one that
    closed its channel and kept running is killed, so that no run outlives its verdict."""
    deadline = time.monotonic() + EXIT_WAIT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _answer(raw: bytes) -> dict[str, object] | None:
    """The child's own answer, if it is a well-formed one."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    stdout, stderr = answer.get("stdout"), answer.get("stderr")
    status, reason = answer.get("status"), answer.get("reason")
    if not (isinstance(stdout, str) and isinstance(stderr, str) and status in STATUSES):
        return None
    if reason is not None and reason not in REASONS:
        return None
    return {"stdout": stdout, "stderr": stderr, "status": status, "reason": reason}


def _verdict(child: Child, wall_seconds: float, timed_out: bool) -> dict[str, object]:
    status = _reap(child.pid)
    if timed_out:
        return {
            "stdout": "",
            "stderr": f"Killed: wall-clock limit of {wall_seconds:g} s",
            "status": "timeout",
            "reason": "wall",
        }
    answer = _answer(b"".join(child.received))
    if answer is not None:
        return answer
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
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


def _answer_cap(limits: Limits) -> int:
    """The most an honest answer can take: stdout and stderr, each capped by the child,
    JSON-escaped (a control character becomes six bytes), plus the envelope."""
    return 2 * 6 * limits.output_bytes + 65536


def serve(limits: Limits, warm: int, wall_seconds: float, forker: Forker) -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    cap = _answer_cap(limits)
    ready = [forker.fork_child() for _ in range(warm)]
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
                    forker.close()
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    child = ready.pop(0) if ready else forker.fork_child()
                    child.run_id = request["id"]
                    child.deadline = time.monotonic() + wall_seconds
                    try:
                        child.channel.sendall(request["code"].encode())
                        child.channel.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass  # the child is already gone; its verdict says why
                    running[child.channel] = child
                    ready.append(forker.fork_child())
            else:
                assert isinstance(source, socket.socket)
                child = running[source]
                chunk = source.recv(1 << 20)
                child.size += len(chunk)
                if child.size > cap:  # no honest answer is this long
                    os.kill(child.pid, signal.SIGKILL)
                    _reap(child.pid)
                    child.received = []
                    _write(stdout, running.pop(source), _too_long(limits))
                elif chunk:
                    child.received.append(chunk)
                else:
                    _finish(running.pop(source), stdout, wall_seconds, timed_out=False)
        now = time.monotonic()
        for channel, child in list(running.items()):
            if child.deadline <= now:
                os.kill(child.pid, signal.SIGKILL)
                _finish(running.pop(channel), stdout, wall_seconds, timed_out=True)


def _too_long(limits: Limits) -> dict[str, object]:
    return {
        "stdout": "",
        "stderr": f"Killed: output exceeded {limits.output_bytes} bytes",
        "status": "killed",
        "reason": "output",
    }


def _kill_all(children: list[Child]) -> None:
    """A run still computing would not notice its closed socket until its CPU limit."""
    for child in children:
        try:
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            continue


def _finish(child: Child, stdout: object, wall_seconds: float, timed_out: bool) -> None:
    _write(stdout, child, _verdict(child, wall_seconds, timed_out))


def _write(stdout: object, child: Child, result: dict[str, object]) -> None:
    child.channel.close()
    line = json.dumps({**result, "id": child.run_id}).encode() + b"\n"
    stdout.write(line)  # type: ignore[attr-defined]
    stdout.flush()  # type: ignore[attr-defined]


def main() -> None:
    config = json.loads(sys.argv[1])
    limits = Limits(**config["limits"])
    # A server that ignores SIGCHLD passes that on through exec; we reap our children.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    forbid_tracing()
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    warm_up()
    close_eval_routes()
    forker = Forker(limits)  # before the first request: it must never hold one
    serve(limits, warm=config["warm"], wall_seconds=config["wall_seconds"], forker=forker)


if __name__ == "__main__":
    main()
