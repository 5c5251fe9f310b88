"""The outer, OS layer of the Python sandbox: what runs inside the child process.

Each run gets its own process, forked (by way of the zygote's forker) from a process
that has imported the allowed modules and never held any run's data, and the process
is thrown away after the run, so nothing one run does can reach the next.

This layer is the boundary: it must hold with arbitrary Python in the child, as after
any escape from RestrictedPython. Before the code arrives the child locks itself down:
- it closes every descriptor it inherited but its own channel, so it holds nothing of
  the zygote's or of another run's;
- it drops to `nobody` when started as root, because root ignores RLIMIT_NPROC;
- it makes itself undumpable, so that no other process of its uid (its siblings, or a
  server running as that uid) can trace it, read its memory or open its `/proc` files;
- address space, file size 0, no core dumps, no new processes;
- no new file descriptors at all (RLIMIT_NOFILE below the lowest free fd), which
  also rules out sockets, pipes and opening any file, `/proc/<pid>/*` included;
- a seccomp filter that refuses sockets, process creation, exec, reaching other
  processes (tracing, memory, descriptors, signals to any pid but its own), host-wide
  IPC objects and keyrings, and filesystem changes (when libseccomp is present;
  `layers()` reports it).
Its environment is the zygote's, which the pool builds from nothing (`pool.py`).
Then it takes the code, sets its CPU limit and runs it under RestrictedPython.
"""

from __future__ import annotations

import ctypes
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
    # the network
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    # new processes and programs
    "fork",
    "vfork",
    "clone",
    "clone3",
    "execve",
    "execveat",
    # other processes: tracing, memory, descriptors, comparisons, scheduling
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "process_mrelease",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "kcmp",
    "move_pages",
    "migrate_pages",
    "get_robust_list",
    "setpriority",
    "ioprio_set",
    "sched_setaffinity",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
    # host-wide objects that would outlive the run or were made by others: System V
    # IPC, POSIX message queues, keyrings, the kernel log
    "shmget",
    "shmat",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "add_key",
    "request_key",
    "keyctl",
    "syslog",
    # kernel interfaces no computation needs
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    # the limits themselves
    "setrlimit",
    "prlimit64",
    # filesystem changes
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
# Signals: only to the child's own pid (argument 0 is the target pid, thread group or,
# for tkill, thread: the child has one thread, whose id is its pid).
# Python signals itself (`signal.raise_signal`, `os.abort`), so these are filtered by
# argument rather than refused; pid 0 and negative pids (process groups) are refused.
SELF_ONLY_SYSCALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
PR_SET_DUMPABLE = 4
_LIBC = ctypes.CDLL(None, use_errno=True)


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


def prctl(option: int, value: int) -> None:
    """prctl(2) with one argument; unsigned long arguments, as the kernel reads them."""
    zero = ctypes.c_ulong(0)
    if _LIBC.prctl(option, ctypes.c_ulong(value), zero, zero, zero) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl({option}, {value}): {os.strerror(number)}")


def forbid_tracing() -> None:
    """Undumpable: the kernel then lets no process without CAP_SYS_PTRACE, same uid
    included, ptrace this one, read or write its memory (`process_vm_readv`) or open
    its `/proc/<pid>/{mem,environ,fd,maps,...}`. Inherited by fork; a uid change resets
    it to `fs.suid_dumpable`, so the child sets it again after dropping to `nobody`."""
    prctl(PR_SET_DUMPABLE, 0)


def close_inherited(keep: set[int]) -> None:
    """Close every descriptor but `keep`: what a fork inherits (the zygote's pipes,
    other children's channels) is not the child's to use."""
    try:
        opened = {int(fd) for fd in os.listdir("/proc/self/fd")}
    except OSError:  # no /proc: every number up to the limit
        opened = set(range(os.sysconf("SC_OPEN_MAX")))
    for fd in sorted(opened - keep):
        try:
            os.close(fd)
        except OSError:  # the listing's own descriptor, closed already
            continue


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
    forbid_tracing()
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    lowest = _lowest_free_fd()
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest, lowest))
    sys.setrecursionlimit(2000)


def _install_seccomp() -> None:
    if not HAVE_SECCOMP:
        return
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    others = seccomp.Arg(0, seccomp.NE, os.getpid())
    rules: list[tuple[str, tuple[Any, ...]]] = [(name, ()) for name in DENIED_SYSCALLS]
    rules += [(name, (others,)) for name in SELF_ONLY_SYSCALLS]
    for name, arguments in rules:
        try:
            syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), name, *arguments)
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
        close_inherited({channel.fileno()})
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
