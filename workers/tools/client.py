"""The workers' client for tool servers: manifests, invocations, retries.

Only connection failures are retried (tenacity): a 4xx is an answer for the model to
read, and retrying a slow simulation would only double the load. Every request carries
the service token (SCISERVE_TOOL_TOKEN) the tool servers require; a server refusing it
is a misconfiguration, so it reads as the tool being unavailable, never as an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from contract.errors import ToolUnavailableError
from contract.settings import TOOL_TOKEN_HEADER, Settings

log = logging.getLogger(__name__)

MANIFEST_TTL_S = 30.0  # a redeployed server's new tools show within this
# A server that is down, or died mid-call (the connection drops before an answer):
# the call is retried, then the tool is unavailable. Tools are pure, so a retry is safe.
CONNECTION_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


@dataclass(frozen=True)
class ToolCall:
    """One invocation as the trace records it."""

    tool: str
    server: str
    arguments: dict[str, Any]
    result: Any
    error: str | None
    status_code: int
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code == 200 and self.error is None


class ToolClient:
    """Talks to the configured tool servers (`{name: base_url}`), sending `token` (the
    tool servers' SCISERVE_TOOL_TOKEN) on every request; `None` sends none."""

    def __init__(
        self,
        servers: dict[str, str],
        *,
        timeout_s: float = 30.0,
        attempts: int = 3,
        token: SecretStr | None = None,
    ):
        self.servers = dict(servers)
        self.timeout_s = timeout_s
        self.attempts = attempts
        headers = {TOOL_TOKEN_HEADER: token.get_secret_value()} if token is not None else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=5.0), headers=headers
        )
        self._tool_server: dict[str, str] = {}
        self._specs: dict[str, dict[str, Any]] = {}
        self._manifests: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ToolClient:
        """The configured servers (`SCISERVE_TOOL_URLS`), or else the embedded default's
        mounts on this gateway, with `SCISERVE_TOOL_TIMEOUT_S` per call and
        `SCISERVE_TOOL_TOKEN` (the embedded service puts its per-process one there)."""
        from contract.schemas import TOOL_SERVER_NAMES as SERVER_NAMES

        if settings.tool_urls:
            servers = dict(settings.tool_urls)
        else:
            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
            base = f"http://{host}:{settings.port}/tools"
            servers = {name: f"{base}/{name}" for name in SERVER_NAMES}
        return cls(servers, timeout_s=settings.tool_timeout_s, token=settings.tool_token)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, server: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.servers[server].rstrip("/") + path
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(CONNECTION_ERRORS),
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.1, max=1.0),
                reraise=False,
            ):
                with attempt:
                    response = await self._http.request(method, url, **kwargs)
                    if response.status_code in (401, 403):
                        raise ToolUnavailableError(
                            f"The {server} tool server refused this worker's tool token "
                            f"({response.status_code}): give the workers and the tool "
                            "servers the same SCISERVE_TOOL_TOKEN."
                        )
                    return response
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            # The URL is internal: it goes to the log, not to the model or the client.
            log.warning("tool server %s at %s unreachable: %s", server, self.servers[server], cause)
            raise ToolUnavailableError(
                f"The {server} tool server is unreachable after {self.attempts} attempts "
                f"({type(cause).__name__}); retry later."
            ) from cause
        except httpx.TimeoutException as exc:
            raise ToolUnavailableError(
                f"The {server} tool server did not answer in time ({type(exc).__name__})."
            ) from exc
        raise AssertionError("unreachable")

    async def manifest(self, servers: list[str] | None = None) -> list[dict[str, Any]]:
        """Function specs of every tool on the given servers (default: all). A server's
        manifest is reused for `MANIFEST_TTL_S`: every adaptive job asks for it."""
        specs = []
        for server in servers or list(self.servers):
            if server not in self.servers:
                raise ToolUnavailableError(f"No tool server named {server!r} is configured.")
            cached = self._manifests.get(server)
            if cached is None or time.monotonic() - cached[0] > MANIFEST_TTL_S:
                response = await self._request(server, "GET", "/manifest")
                response.raise_for_status()
                cached = (time.monotonic(), response.json())
                self._manifests[server] = cached
            for spec in cached[1]:
                name = spec["function"]["name"]
                self._tool_server[name] = server
                self._specs[name] = spec
                specs.append(spec)
        return specs

    async def invoke(
        self,
        tool: str,
        arguments: dict[str, Any],
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ToolCall:
        """Run a tool; `timeout_s` (what remains of the job's deadline) caps the
        configured per-call timeout. `headers` go with the request (the tool-call span's
        W3C `traceparent`, so the tool server's span joins the job's trace)."""
        if tool not in self._tool_server:
            await self.manifest()
        server = self._tool_server.get(tool)
        if server is None:
            return ToolCall(
                tool,
                "",
                arguments,
                None,
                f"There is no tool named {tool!r}; known tools: "
                f"{', '.join(sorted(self._tool_server))}.",
                404,
                0.0,
            )
        limit = self.timeout_s if timeout_s is None else max(0.001, min(self.timeout_s, timeout_s))
        response = await self._request(
            server,
            "POST",
            "/invoke",
            json={"tool": tool, "arguments": arguments},
            timeout=httpx.Timeout(limit, connect=min(5.0, limit)),
            headers=dict(headers) if headers else None,
        )
        try:
            body = response.json()
        except ValueError:
            body = {"result": None, "error": response.text[:500], "elapsed_ms": 0.0}
        return ToolCall(
            tool,
            server,
            arguments,
            body.get("result"),
            body.get("error"),
            response.status_code,
            float(body.get("elapsed_ms") or 0.0),
        )
