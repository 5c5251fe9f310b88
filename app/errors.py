"""The one place that maps typed errors and job outcomes to HTTP responses.

The errors and the closed set of outcome codes live in `contract.errors`; this module
only turns them into status codes, headers and JSON bodies.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from app.metrics import REQUESTS
from contract.errors import SciserveError


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


def validation_message(exc: RequestValidationError) -> str:
    """One sentence naming each bad field, e.g. `body.strategy.samples: ...`."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid" or (
            error.get("type") == "model_attributes_type"
            and tuple(error.get("loc", ())) == ("body",)
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
    async def _redis_error(_: Request, exc: RedisError) -> JSONResponse:
        # Redis away is a temporary outage of the service, never a 500 for the client.
        return JSONResponse(
            {"detail": f"The job store (Redis) is unreachable or failing; retry shortly. ({exc})"},
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
        return JSONResponse({"detail": validation_message(exc), "errors": errors}, status_code=422)
