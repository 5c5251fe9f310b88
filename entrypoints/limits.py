"""Process and HTTP-server limits for a gateway or worker that holds many connections.

Each `/solve` keeps its connection open until the answer, so 512 callers are 512
sockets in the gateway, plus the Redis and engine ones. A default soft limit of 1024
open files turns the next `accept()` into EMFILE, which clients see as dropped
connections (`httpx.ReadError`); vLLM's own API server raises the limit for the same
reason. The listen backlog takes a burst of new connections while the loop is busy.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

log = logging.getLogger(__name__)

OPEN_FILES_TARGET = 65536
LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
KEEP_ALIVE_S = 30  # callers that reuse connections between requests keep them


def raise_open_file_limit(target: int = OPEN_FILES_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE towards `target` (at most the hard limit); returns
    the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return soft


def uvicorn_options() -> dict[str, Any]:
    """uvicorn.Config/uvicorn.run keyword arguments for the gateway and the workers:
    no concurrency cap (the queue's depth limit is the backpressure), a deep backlog."""
    return {
        "backlog": LISTEN_BACKLOG,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "limit_concurrency": None,
    }
