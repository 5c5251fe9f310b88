"""A request body size limit, enforced before the body is parsed.

Content-Length is checked up front; a chunked body is counted as it streams in.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException

Scope = dict[str, Any]


async def send_json_error(send: Any, status: int, detail: str) -> None:
    """An error response `{detail}` from ASGI middleware, before any route runs."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parser lets it through as a 413 rather than
    turning it into a generic 400."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"The request body is larger than the limit of {max_bytes} bytes.")


class BodySizeLimit:
    """ASGI middleware answering 413 for bodies over `max_bytes`."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Any) -> None:
        detail = f"The request body is larger than the limit of {self.max_bytes} bytes."
        await send_json_error(send, 413, detail)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._reject(send)
