"""The embedded default, and running the service for tests and benchmarks.

`create_embedded_app` wires one process: the gateway, the in-process queue, one worker
with its engine and (unless they run elsewhere) every tool server under /tools/NAME,
which answer only callers with the service token: SCISERVE_TOOL_TOKEN, or else a random
one made per process that only the worker beside them knows.
`EmbeddedServer` serves that app on a real port in a background thread;
`ServiceProcesses` starts gateway/worker/tool-server processes.

Tests and benchmarks need both real HTTP and the raw engine the server uses; the
engine lives on the server's event loop, so `EmbeddedServer.call` runs a coroutine there.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from contract.settings import Settings, get_settings
from contract.telemetry import OFF, Telemetry
from jobqueue.protocol import JobQueue
from tool_servers.registry import ToolServer

T = TypeVar("T")


def create_embedded_app(settings: Settings | None = None, engine: Any = None) -> FastAPI:
    """The gateway with a worker beside it; `engine` may be given (unstarted) to serve
    instead of building one from settings."""
    from entrypoints.gateway import create_app
    from workers.engines.factory import build_engine
    from workers.runtime import WorkerRuntime

    settings = with_tool_token(settings or get_settings())
    # One process, one tracer provider: the gateway, the worker and the tool servers
    # share it (off unless the OTEL_* variables ask for traces).
    telemetry = Telemetry.from_env(content=settings.trace_content)
    tool_servers = embedded_tool_servers(settings, telemetry)

    def build_worker(queue: JobQueue) -> WorkerRuntime:
        return WorkerRuntime(
            engine or build_engine(settings),
            queue,
            settings,
            tools_mounted=bool(tool_servers),
            telemetry=telemetry,
        )

    return create_app(
        settings, build_worker=build_worker, side_apps=tool_servers, telemetry=telemetry
    )


def with_tool_token(settings: Settings) -> Settings:
    """`settings` with a tool token for the mounted tool servers: the configured one, or
    a random one for this process. The mounts share the gateway's port, so without it
    any caller of the API could run code past its keys, rate limits and budgets; the
    worker's tool client reads the token from the same settings."""
    if settings.tool_token is not None or not settings.mount_tools or settings.tool_urls:
        return settings
    return settings.model_copy(update={"tool_token": SecretStr(secrets.token_urlsafe(32))})


def embedded_tool_servers(settings: Settings, telemetry: Telemetry = OFF) -> list[ToolServer]:
    """Every tool server under /tools/NAME over the same HTTP port, unless tool servers
    are configured elsewhere; each requires `settings.tool_token` (`with_tool_token`)."""
    if not settings.mount_tools or settings.tool_urls:
        return []
    if settings.tool_token is None:
        raise ValueError("Mounted tool servers need a tool token: pass with_tool_token(settings).")
    from tool_servers.registry import SERVER_NAMES, build_tool_server

    return [build_tool_server(name, settings, telemetry) for name in SERVER_NAMES]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """`with EmbeddedServer(settings) as server:` → a ready service at `server.url`."""

    def __init__(self, settings: Settings, ready_timeout_s: float = 300, engine: Any = None):
        self.settings = settings
        self._engine = engine  # an unstarted engine to serve instead of building one
        self.ready_timeout_s = ready_timeout_s
        self.url = f"http://{settings.host}:{settings.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.app: Any = None

    @property
    def engine(self) -> Any:
        return self.app.state.worker.engine

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        """Run a coroutine on the server's loop, where the engine lives."""
        assert self.loop is not None, "server not started"
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def client(self, timeout: float = 600) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def start(self) -> EmbeddedServer:
        import uvicorn

        self.app = create_embedded_app(self.settings, self._engine)
        config = uvicorn.Config(
            self.app, host=self.settings.host, port=self.settings.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            started.set()
            await self._server.serve()

        self._thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self._thread.start()
        started.wait(30)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError("the server thread exited during start-up; see its log")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                last = response.text
                if response.status_code == 200:
                    return
                if "failed" in last:
                    raise RuntimeError(f"the engine failed to start: {last}")
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"not ready within {self.ready_timeout_s:g} s: {last}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=60)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until_up(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float, path: str = "/readyz"
) -> None:
    """Poll `url + path` until it answers 200; a process that exits first is an error
    that carries the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited early: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}{path} not up in {timeout:g} s")


class ServiceProcesses:
    """Start `sciserve gateway|worker` as real processes (tests, benchmarks), each
    logging to its own file; `stop_all` kills what is left."""

    def __init__(self, log_dir: Path, base_env: dict[str, str]):
        self.log_dir = log_dir
        self.base_env = base_env
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, kind: str, wait: bool = True, ready_timeout_s: float = 180, **env: object
    ) -> tuple[subprocess.Popen[bytes], str]:
        port = int(env.pop("port", free_port()))  # type: ignore[call-overload]
        port_variable = "SCISERVE_PORT" if kind == "gateway" else "SCISERVE_WORKER_PORT"
        environment = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            **self.base_env,
            port_variable: str(port),
            **{f"SCISERVE_{k.upper()}": str(v) for k, v in env.items()},
        }
        process, log = self._spawn(f"{kind}-{len(self.processes)}", [kind], environment)
        url = f"http://127.0.0.1:{port}"
        if wait:
            wait_until_up(url, process, log, ready_timeout_s)
        return process, url

    def start_tool_server(
        self, name: str, ready_timeout_s: float = 120, token: str | None = None
    ) -> tuple[subprocess.Popen[bytes], str]:
        """`sciserve tool-server NAME` as its own process on 127.0.0.1; returns (process,
        base URL). It requires `token` (or SCISERVE_TOOL_TOKEN of the environment given);
        with neither it is started `--insecure-no-token`, open to local callers."""
        port = free_port()
        environment = {**os.environ, **self.base_env}
        if token is not None:
            environment["SCISERVE_TOOL_TOKEN"] = token
        arguments = ["tool-server", name, "--port", str(port)]
        if not environment.get("SCISERVE_TOOL_TOKEN"):
            arguments.append("--insecure-no-token")
        process, log = self._spawn(f"tool-{name}", arguments, environment)
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process, log, ready_timeout_s, path="/healthz")
        return process, url

    def _spawn(
        self, log_name: str, arguments: list[str], environment: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """`sciserve ARGUMENTS…` as a child process, tracked for `stop_all`."""
        # Logs go to a file: an unread pipe fills up and blocks a chatty process.
        log = self.log_dir / f"{log_name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "entrypoints.cli", *arguments],
                env=environment,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process, log

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
