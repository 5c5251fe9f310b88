"""Bodies are JSON: a request with a body and another media type gets a 415 that says
what to send, instead of a misleading "must be a JSON object" from the parser."""

from __future__ import annotations

from typing import Any

from contract.body_limit import send_json_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class RequireJson:
    """ASGI middleware: 415 for POST/PUT/PATCH whose Content-Type is not JSON."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").decode("latin-1")
        if is_json(content_type):
            await self.app(scope, receive, send)
            return
        got = f"got {content_type!r}" if content_type else "no Content-Type was sent"
        detail = f"Send the body as JSON with 'Content-Type: application/json' ({got})."
        await send_json_error(send, 415, detail)
