"""The one place that maps typed errors and job outcomes to HTTP responses.

The errors and the closed set of outcome codes live in `contract.errors`; this module
only turns them into status codes, headers and JSON bodies.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.metrics import REQUESTS
from contract.errors import SciserveError

log = logging.getLogger(__name__)
REDIS_UNAVAILABLE = "The job store (Redis) is unreachable or failing; retry shortly."


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


# FastAPI's text for a body it cannot decode (bad UTF-8, nesting past the parser's depth).
_UNPARSABLE_BODY = "There was an error parsing the body"


def validation_message(exc: RequestValidationError) -> str:
    """One sentence naming each bad field, e.g. `body.strategy.samples: ...`."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            context = error.get("ctx", {}).get("error", "")
            parts.append(f"the request body is not valid JSON ({context})")
        elif error.get("type") == "model_attributes_type" and tuple(error.get("loc", ())) == (
            "body",
        ):
            parts.append("the request body must be a JSON object")
        else:
            parts.append(f"{_location(error)}: {error.get('msg', 'invalid value')}")
    return "Invalid request: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    """Map typed errors to JSON bodies `{detail, errors?}` with the right status."""

    @app.exception_handler(SciserveError)
    async def _sciserve_error(_: Request, exc: SciserveError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.message}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RedisError)
    async def _redis_error(request: Request, exc: RedisError) -> JSONResponse:
        # Redis away is a temporary outage of the service, never a 500 for the client;
        # its host and port go to the log, not to the client.
        log.warning("Redis error on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"detail": REDIS_UNAVAILABLE},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path in ("/solve", "/jobs"):
            REQUESTS.labels(strategy="unknown", outcome="invalid").inc()
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        # Syntax (not JSON at all) is a 400; JSON with wrong fields is a 422.
        status = 400 if any(e["type"] == "json_invalid" for e in errors) else 422
        return JSONResponse(
            {"detail": validation_message(exc), "errors": errors}, status_code=status
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        detail = exc.detail
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        elif exc.status_code == 400 and detail == _UNPARSABLE_BODY:
            detail = (
                "The request body could not be decoded: send UTF-8 encoded JSON, nested no "
                "deeper than a few hundred levels."
            )
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


def allowed_methods(app: Any, scope: MutableMapping[str, Any]) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first
    route's), so a 405's `Allow` is the whole truth."""
    methods: set[str] = set()
    for route in app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(scope)[0] != Match.NONE:  # PARTIAL: path only
            methods.update(route_methods)
    return sorted(methods)
