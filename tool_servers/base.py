"""What every tool server shares: the `/manifest` + `/invoke` contract, the service
token, argument validation, limits, a per-call timeout and metrics.

A tool is a pydantic argument model plus a function. The manifest is generated from
the same model the server validates with, so what the model is told and what the
server accepts cannot drift apart (DESIGN §2, tool servers).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from contract.body_limit import BodySizeLimit
from contract.settings import TOOL_TOKEN_HEADER
from tool_servers.metrics import TOOL_CALLS, TOOL_DURATION

ToolFunction = Callable[[Any], dict[str, Any] | Awaitable[dict[str, Any]]]


class ToolArgumentError(ValueError):
    """Arguments that pass the schema but make no physical sense (a grid too fine for
    the limits, a point outside the domain). The message goes back to the model, so it
    says what to change."""


class ToolArguments(BaseModel):
    """Base for argument models: unknown keys are an error, and NaN or infinity is
    refused everywhere, because a simulation fed NaN returns NaN, not an error.

    Every tool takes AWL's optional `thought` (its agents add it to every schema and
    drop it before the call, `src/*/answer_agent.py`); it is accepted and ignored.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    thought: str | None = Field(
        default=None,
        max_length=8000,
        description="Your internal reasoning and thoughts of why you call this function.",
    )


@dataclass(frozen=True)
class Tool:
    """One callable tool: its name, what the model reads about it, and how to run it.

    `run` may be sync (run in a worker thread, for numerical code) or async (the
    sandbox, which waits on a child process).
    """

    name: str
    description: str
    arguments: type[ToolArguments]
    run: ToolFunction
    timeout_s: float = 10.0

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style function spec of this tool."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }


class InvokeRequest(BaseModel):
    """Body of `POST /invoke`."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, max_length=100)
    arguments: dict[str, Any] = Field(default_factory=dict)


def argument_error_message(tool: str, exc: ValidationError) -> str:
    """One sentence per bad field, in words a model can act on."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    return f"Invalid arguments for {tool}: " + "; ".join(parts) + "."


def _finite_json(value: Any) -> Any:
    """Replace NaN/inf (which JSON cannot carry) by None, so a diverged simulation
    reads as 'no value' instead of breaking the response."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def _answer(
    status: int, *, result: Any = None, error: str | None = None, t0: float
) -> JSONResponse:
    elapsed_ms = round((time.perf_counter() - t0) * 1000, 3)
    return JSONResponse(
        {"result": result, "error": error, "elapsed_ms": elapsed_ms}, status_code=status
    )


async def _call(tool: Tool, arguments: ToolArguments) -> dict[str, Any]:
    if inspect.iscoroutinefunction(tool.run):
        return await tool.run(arguments)  # type: ignore[no-any-return]
    # Numerical tools hold the GIL only partly (numpy, mujoco release it), and a thread
    # keeps the event loop answering /healthz while they run.
    return await asyncio.to_thread(tool.run, arguments)  # type: ignore[arg-type]


MISSING_TOKEN = (
    "This tool server answers only sciserve's workers: send the service token "
    f"(SCISERVE_TOOL_TOKEN) as `Authorization: Bearer <token>` or `{TOOL_TOKEN_HEADER}`."
)
WRONG_TOKEN = (
    "The tool token sent does not match this tool server's SCISERVE_TOOL_TOKEN; give the "
    "workers and the tool servers the same one."
)
# Probes carry no token: a kubelet cannot hold a Secret, and /healthz tells nothing.
OPEN_PATHS = frozenset({"/healthz"})


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class RequireToolToken:
    """ASGI middleware: every request but `OPEN_PATHS` carries the service token, as
    `Authorization: Bearer <token>` or `X-Sciserve-Tool-Token: <token>`. Missing: 401;
    wrong: 403. Middleware rather than a route dependency, so /docs, /openapi.json,
    /metrics and unknown paths are covered too. The comparison is of SHA-256 digests in
    constant time (hmac.compare_digest), so neither the token's bytes nor its length
    leak through timing.
    """

    def __init__(self, app: Any, token: SecretStr):
        self.app = app
        self._digest = _digest(token.get_secret_value())

    def _presented(self, scope: dict[str, Any]) -> str | None:
        headers = dict(scope.get("headers", []))
        own = headers.get(TOOL_TOKEN_HEADER.lower().encode())
        if own is not None:
            return own.decode("latin-1").strip()
        scheme, _, credentials = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _route_path(scope) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        if presented is not None and hmac.compare_digest(_digest(presented), self._digest):
            await self.app(scope, receive, send)
            return
        status, message = (401, MISSING_TOKEN) if presented is None else (403, WRONG_TOKEN)
        body = json.dumps({"result": None, "error": message, "elapsed_ms": 0.0}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="sciserve tool server"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _route_path(scope: dict[str, Any]) -> str:
    """The path inside this app: mounted under /tools/NAME, Starlette keeps the full
    path in `path` and the mount point in `root_path`."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def create_tool_app(
    server: str,
    tools: list[Tool],
    *,
    token: SecretStr | None,
    max_body_bytes: int = 256 * 1024,
    max_result_bytes: int = 256 * 1024,
    max_concurrency: int = 8,
) -> FastAPI:
    """A FastAPI app serving `tools` under the tool-server contract (DESIGN §2).

    With a `token`, every route but /healthz requires it (`RequireToolToken`); `None`
    serves them open, which only an explicit `--insecure-no-token` (or an in-process test
    client) asks for: callers pass it on purpose, so it has no default.

    A call past its timeout answers 504; its thread may run on to its own limits (grid
    and simulated-time limits bound that), which is why the limits exist at all.
    """
    by_name = {t.name: t for t in tools}
    slots = asyncio.Semaphore(max_concurrency)
    app = FastAPI(title=f"sciserve tool server: {server}", version="1")
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    if token is not None:
        # Added last, so it runs first: a caller without the token gets nothing else.
        app.add_middleware(RequireToolToken, token=token)
    app.state.tools = by_name
    app.state.token_required = token is not None

    @app.get("/manifest")
    async def manifest() -> list[dict[str, Any]]:
        """The tools of this server as OpenAI-style function specs."""
        return [t.spec() for t in tools]

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "server": server, "tools": sorted(by_name)}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/invoke")
    async def invoke(request: Request) -> JSONResponse:
        """Run one tool: `{tool, arguments}` → `{result, error, elapsed_ms}`."""
        t0 = time.perf_counter()
        try:
            body = InvokeRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _answer(422, error=argument_error_message("invoke", exc), t0=t0)
        tool = by_name.get(body.tool)
        if tool is None:
            known = ", ".join(sorted(by_name))
            return _answer(
                404, error=f"Unknown tool {body.tool!r}; this server has: {known}.", t0=t0
            )
        status, result, error, outcome = await _invoke(
            tool, body.arguments, slots, max_result_bytes
        )
        TOOL_CALLS.labels(tool=tool.name, outcome=outcome).inc()
        TOOL_DURATION.labels(tool=tool.name).observe(time.perf_counter() - t0)
        return _answer(status, result=result, error=error, t0=t0)

    return app


async def _invoke(
    tool: Tool, raw: dict[str, Any], slots: asyncio.Semaphore, max_result_bytes: int
) -> tuple[int, Any, str | None, str]:
    """Validate, run under the timeout, and size-check; returns (status, result, error,
    metric outcome)."""
    try:
        arguments = tool.arguments.model_validate(raw)
    except ValidationError as exc:
        return 422, None, argument_error_message(tool.name, exc), "bad_arguments"
    try:
        async with slots:
            result = await asyncio.wait_for(_call(tool, arguments), timeout=tool.timeout_s)
    except ToolArgumentError as exc:
        return 422, None, f"{tool.name}: {exc}", "bad_arguments"
    except TimeoutError:
        message = (
            f"{tool.name} did not finish within {tool.timeout_s:g} s; ask for a smaller problem."
        )
        return 504, None, message, "timeout"
    except Exception as exc:  # a bug in the tool, not the caller's fault: say so plainly
        return 500, None, f"{tool.name} failed internally: {type(exc).__name__}: {exc}", "error"
    result = _finite_json(result)
    if len(json.dumps(result)) > max_result_bytes:
        message = f"{tool.name} produced more than {max_result_bytes} bytes; ask for less output."
        return 422, None, message, "too_large"
    return 200, result, None, "ok"
