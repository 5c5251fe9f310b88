"""The outer, OS layer of the Python sandbox: what runs inside the child process.

Each run gets its own process, forked from a zygote that has already imported the
allowed modules (so a run costs a fork, not an import), and the process is thrown away
after the run, so nothing one run does can reach the next.

Before the code arrives the child locks itself down:
- it drops to `nobody` when started as root, because root ignores RLIMIT_NPROC;
- address space, file size 0, no core dumps, no new processes;
- no new file descriptors at all (RLIMIT_NOFILE below the lowest free fd), which
  also rules out sockets and opening files for reading;
- a seccomp filter that refuses sockets, process creation, exec, signals to others,
  and filesystem changes (when libseccomp is present; `layers()` reports it).
Then it takes the code, sets its CPU limit and runs it under RestrictedPython.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
import sys
import traceback
from typing import Any

# Preloaded here so that the zygote holds them and user imports never touch the disk
# (they could not: no new file descriptors). One BLAS thread: a forked child must not
# inherit a thread pool.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import bisect  # noqa: F401
import cmath  # noqa: F401
import collections  # noqa: F401
import datetime  # noqa: F401
import decimal
import fractions
import functools  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import json
import math
import numbers  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics

import mpmath  # noqa: F401
import numpy
import scipy.constants
import scipy.fft
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.sparse
import scipy.special
import scipy.stats
import sympy

from tool_servers.sandbox.limits import Limits
from tool_servers.sandbox.policy import (
    OutputLimitExceeded,
    SandboxOutput,
    compile_user_code,
    restricted_globals,
)

try:
    import pyseccomp as seccomp

    seccomp.SyscallFilter(seccomp.ALLOW)  # loads libseccomp now, while files can be opened
    HAVE_SECCOMP = True
except Exception:  # libseccomp missing: the other layers still hold
    HAVE_SECCOMP = False

NOBODY = 65534
DENIED_SYSCALLS = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "execve",
    "execveat",
    "ptrace",
    "kill",
    "tkill",
    "tgkill",
    "pidfd_open",
    "pidfd_send_signal",
    "process_vm_writev",
    "setrlimit",
    "prlimit64",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "symlink",
    "symlinkat",
    "link",
    "linkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "fchownat",
    "truncate",
    "ftruncate",
    "mount",
    "umount2",
    "chroot",
    "pivot_root",
    "unshare",
    "setns",
    "personality",
)


def warm_up() -> None:
    """Touch what numpy, scipy and sympy import lazily, in the zygote, so that the
    children (which cannot open files) find it already loaded."""
    x = sympy.Symbol("x")
    sympy.integrate(sympy.sin(x) * sympy.exp(x), x)
    sympy.integrate(x**2, (x, 0, 1))
    sympy.solve(x**2 - 2, x)
    sympy.simplify(sympy.cos(x) ** 2 + sympy.sin(x) ** 2)
    sympy.factor(x**3 - 1)
    sympy.series(sympy.exp(x), x, 0, 4)
    sympy.limit(sympy.sin(x) / x, x, 0)
    sympy.Matrix([[1, 2], [3, 4]]).det()
    sympy.dsolve(sympy.Function("f")(x).diff(x) - sympy.Function("f")(x))
    sympy.nsimplify(0.5)
    sympy.N(sympy.pi, 30)
    sympy.lambdify(x, x**2, "numpy")(numpy.arange(3.0))
    sympy.sympify("x**2 + 1")
    sympy.Rational(1, 3) + sympy.sqrt(2)
    numpy.linalg.eig(numpy.eye(2))
    numpy.fft.fft(numpy.ones(4))
    numpy.random.default_rng(0).normal(size=3)
    numpy.polyfit([0.0, 1.0, 2.0], [1.0, 2.0, 5.0], 2)
    scipy.integrate.quad(math.sin, 0, 1)
    scipy.integrate.solve_ivp(lambda t, y: -y, (0, 1), [1.0])
    scipy.optimize.brentq(lambda v: v - 1, 0, 2)
    scipy.optimize.minimize(lambda v: (v[0] - 1) ** 2, [0.0])
    scipy.stats.norm.cdf(0.5)
    fractions.Fraction(1, 3) + 1
    decimal.Decimal("0.1") * 3
    statistics.mean([1, 2, 3])


def _lowest_free_fd() -> int:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def _virtual_memory_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def lock_down(limits: Limits) -> None:
    """Everything that does not depend on the code: applied while the child waits."""
    address_space = _virtual_memory_bytes() + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    lowest = _lowest_free_fd()
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest, lowest))
    sys.setrecursionlimit(2000)


def _install_seccomp() -> None:
    if not HAVE_SECCOMP:
        return
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except Exception:  # a syscall this kernel/arch does not have
            continue
    syscall_filter.load()


def _set_cpu_limit(seconds: int) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime) + 1
    # SIGXCPU at the soft limit, SIGKILL one second later even if SIGXCPU is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (spent + seconds, spent + seconds + 1))


def execute(source: str, limits: Limits) -> dict[str, Any]:
    """Run `source` and report {stdout, stderr, status, reason}."""
    output = SandboxOutput(limits.output_bytes)
    errors = SandboxOutput(limits.output_bytes)
    sys.stdout = output  # type: ignore[assignment]  # library prints land here too
    sys.stderr = errors  # type: ignore[assignment]
    status, reason = "ok", None
    try:
        code = compile_user_code(source)
        exec(code, restricted_globals(output))
    except SyntaxError as exc:
        status = "error"
        errors.parts.append(f"SyntaxError: {exc}\n")
    except OutputLimitExceeded as exc:
        status, reason = "killed", "output"
        errors.parts.append(f"Killed: {exc}\n")
    except MemoryError:
        status, reason = "killed", "memory"
        errors.parts.append(f"Killed: memory limit of {limits.memory_bytes} bytes exceeded\n")
    except BaseException as exc:
        status = "error"
        lines = traceback.format_exception_only(type(exc), exc)
        errors.parts.append("".join(lines)[-4000:])
    return {
        "stdout": output.getvalue(),
        "stderr": errors.getvalue(),
        "status": status,
        "reason": reason,
    }


def child_main(channel: socket.socket, limits: Limits) -> None:
    """Body of a warm child: lock down, wait for one program, run it, answer, exit."""
    try:
        lock_down(limits)
        source = receive_all(channel).decode("utf-8", "replace")
        _set_cpu_limit(limits.cpu_seconds)
        _install_seccomp()
        result = execute(source, limits)
    except BaseException as exc:
        result = {
            "stdout": "",
            "stderr": f"sandbox failure: {exc!r}",
            "status": "error",
            "reason": "crash",
        }
    try:
        channel.sendall(json.dumps(result).encode())
        channel.shutdown(socket.SHUT_WR)
    finally:
        os._exit(0)


def receive_all(channel: socket.socket) -> bytes:
    """Read until the peer shuts its side down."""
    chunks = []
    while chunk := channel.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
