"""Typed errors and the one place that maps them to HTTP responses.

Each message is a sentence a user can act on; the status code tells a client whether
retrying can help (503/504) or the request must change (4xx).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError


class SciserveError(Exception):
    """Base of every error a client may see."""

    status_code = 500
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AdapterError(SciserveError):
    """An adapter or registry is unusable (wrong base, rank, missing files, no slot)."""

    status_code = 422


class AuthError(SciserveError):
    status_code = 401


class ForbiddenError(SciserveError):
    status_code = 403


class ConflictError(SciserveError):
    """The request is valid but this process cannot serve it (e.g. no engine here)."""

    status_code = 409


class UnknownJobError(SciserveError):
    status_code = 404


class EngineUnavailableError(SciserveError):
    """A remote engine cannot be reached; retrying later can help."""

    status_code = 503
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class ToolUnavailableError(SciserveError):
    """A tool server cannot be reached after retries; the job can be retried later."""

    status_code = 503
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class QueueFullError(SciserveError):
    """Backpressure: the queue is at its bound, never grown without limit."""

    status_code = 503
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "2"}


class JobTimeoutError(SciserveError):
    """The job outran its time; it is marked failed, not dropped."""

    status_code = 504


class InvalidStrategyError(SciserveError):
    """A strategy the worker cannot run as asked (e.g. ART without its roles)."""

    status_code = 422


class PromptTooLongError(SciserveError):
    """A prompt the model's context cannot hold."""

    status_code = 422


class JobFailedError(SciserveError):
    status_code = 500


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
        from app.metrics import REQUESTS

        if request.url.path in ("/solve", "/jobs"):
            REQUESTS.labels(strategy="unknown", outcome="invalid").inc()
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": validation_message(exc), "errors": errors}, status_code=422)
