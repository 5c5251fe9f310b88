"""OpenAI's error body for the `/v1` routes: `{"error": {message, type, param, code}}`.

The rest of the gateway answers `{"detail": ...}` (app/errors.py); OpenAI clients read
`error.message` and turn the status into typed exceptions, so `/v1` routes use their
own route class that renders the same typed errors in OpenAI's shape (FastAPI's
custom `APIRoute`: the route catches what its handler and dependencies raise).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from app.errors import REDIS_UNAVAILABLE, validation_message
from app.metrics import REQUESTS
from contract.errors import Outcome, SciserveError
from contract.openai import ErrorDetail

log = logging.getLogger(__name__)

# OpenAI's error `type` per status; worker-side 422s (a strategy the worker cannot
# run, a prompt too long) are 400s, as OpenAI answers bad requests.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}
_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


class OpenAIRequestError(SciserveError):
    """A request the OpenAI layer refuses, naming the field (`param`)."""

    status_code = 400

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param, self.code = param, code


def error_detail(exc: SciserveError) -> tuple[int, ErrorDetail]:
    """The status and OpenAI error of a typed error."""
    status = 400 if exc.status_code == 422 else exc.status_code
    code = getattr(exc, "code", None) or _CODES.get(status)
    if code is None and exc.outcome is not Outcome.internal:
        code = exc.outcome.value  # e.g. prompt_too_long, tool_unavailable, timeout
    return status, ErrorDetail(
        message=exc.message,
        type=_TYPES.get(status, "server_error"),
        param=getattr(exc, "param", None),
        code=code,
    )


def error_response(exc: SciserveError) -> JSONResponse:
    status, detail = error_detail(exc)
    return JSONResponse({"error": detail.model_dump()}, status_code=status, headers=exc.headers)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    param = None
    if errors:
        loc = [str(part) for part in errors[0].get("loc", ()) if part != "body"]
        param = ".".join(loc) or None
    detail = ErrorDetail(
        message=validation_message(exc), type="invalid_request_error", param=param, code=None
    )
    return JSONResponse({"error": detail.model_dump()}, status_code=400)


class OpenAIRoute(APIRoute):
    """A route whose errors, its dependencies' included, use OpenAI's body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                REQUESTS.labels(strategy="unknown", outcome="invalid").inc()
                return _validation_error(exc)
            except SciserveError as exc:
                return error_response(exc)
            except HTTPException as exc:
                detail = ErrorDetail(
                    message=str(exc.detail),
                    type=_TYPES.get(exc.status_code, "invalid_request_error"),
                )
                return JSONResponse(
                    {"error": detail.model_dump()},
                    status_code=exc.status_code,
                    headers=dict(exc.headers or {}),
                )
            except RedisError as exc:
                log.warning("Redis error on %s: %s", request.url.path, exc)
                detail = ErrorDetail(message=REDIS_UNAVAILABLE, type="service_unavailable_error")
                return JSONResponse(
                    {"error": detail.model_dump()}, status_code=503, headers={"Retry-After": "5"}
                )

        return route
