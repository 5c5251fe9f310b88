"""`sciserve worker`: one engine claiming jobs from Redis, with its own small HTTP
server for /healthz, /readyz, /metrics and /admin/adapters.

SIGTERM (Kubernetes' stop) and SIGINT start a graceful drain: claim nothing more,
let running jobs finish for up to SCISERVE_DRAIN_TIMEOUT_S, hand the rest back to
the queue, then exit.

If its engine dies and cannot be brought back in place (workers/runtime.py restarts it
a bounded number of times), the worker hands its jobs back, stops its HTTP server and
exits with status 3 (ENGINE_DEAD_EXIT), so that its supervisor starts a fresh process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from contract.settings import Settings
from contract.telemetry import Telemetry
from entrypoints.gateway import create_worker_app
from entrypoints.limits import raise_open_file_limit, uvicorn_options
from jobqueue.factory import build_queue
from workers.engines.factory import build_engine
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)
ENGINE_DEAD_EXIT = 3  # the exit status of a worker whose engine died for good


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the worker owns SIGTERM, so that the
    drain happens before the HTTP side goes away."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_worker(settings: Settings) -> None:
    if settings.redis_url is None:
        raise ValueError("`sciserve worker` needs SCISERVE_REDIS_URL (the shared queue).")
    raise_open_file_limit()
    queue = build_queue(settings)
    telemetry = Telemetry.from_env(content=settings.trace_content, service_name="sciserve-worker")
    runtime = WorkerRuntime(
        build_engine(settings), queue, settings, supervised=True, telemetry=telemetry
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime.start_background()
    server = None
    server_task = None
    if settings.worker_port:
        config = uvicorn.Config(
            create_worker_app(settings, runtime),
            host=settings.host,
            port=settings.worker_port,
            log_level="warning",
            **uvicorn_options(),
        )
        server = _Server(config)
        server_task = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    gave_up = asyncio.create_task(runtime.fatal.wait())
    await asyncio.wait({stopped, gave_up}, return_when=asyncio.FIRST_COMPLETED)
    for waiter in (stopped, gave_up):
        waiter.cancel()
    if runtime.fatal.is_set():
        log.error("exiting for a fresh start: %s", runtime.error)
    else:
        log.info("stopping: draining running jobs for up to %.0f s", settings.drain_timeout_s)
    await runtime.stop()
    if server is not None and server_task is not None:
        server.should_exit = True
        await server_task
    await queue.close()
    telemetry.shutdown()  # export the spans that are left
    if runtime.fatal.is_set():
        raise SystemExit(ENGINE_DEAD_EXIT)
