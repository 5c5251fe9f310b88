"""Sandbox limits and the OS layers this machine offers, importable without loading
the scientific stack (the gateway imports this; only the zygote imports `child`)."""

from __future__ import annotations

import ctypes.util
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024 * 1024
    output_bytes: int = 64 * 1024


def layers() -> dict[str, bool]:
    """Which OS layers the sandbox gets here: rlimits always, seccomp when libseccomp
    is installed, and a drop to `nobody` when the server runs as root."""
    return {
        "rlimits": True,
        "seccomp": ctypes.util.find_library("seccomp") is not None,
        "drops_root": os.geteuid() == 0,
    }
