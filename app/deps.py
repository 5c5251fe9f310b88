"""Injected dependencies: the queue, the worker-facing admin surface, settings, auth.

Routers depend on these protocols only; tests swap implementations through
`app.dependency_overrides`.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from fastapi import Header, Request

from app.config import Settings
from app.errors import AuthError, ForbiddenError
from app.queue import JobQueue
from app.schemas import AdapterInfo, AdapterLoad


class AdapterAdmin(Protocol):
    async def load_adapter(self, body: AdapterLoad) -> AdapterInfo: ...

    async def unload_adapter(self, role: str) -> None: ...

    def list_adapters(self) -> list[AdapterInfo]: ...


class Readiness(Protocol):
    async def readiness(self) -> tuple[bool, str]: ...


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


def get_adapter_admin(request: Request) -> AdapterAdmin:
    admin: AdapterAdmin = request.app.state.worker
    return admin


def get_readiness(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.worker
    return readiness


def require_admin(
    request: Request, x_admin_key: str | None = Header(default=None, alias="X-Admin-Key")
) -> None:
    """Admin endpoints need `X-Admin-Key` equal to SCISERVE_ADMIN_KEY."""
    expected = get_settings(request).admin_key
    if expected is None:
        raise ForbiddenError("Admin endpoints are disabled: set SCISERVE_ADMIN_KEY to enable them.")
    if not x_admin_key:
        raise AuthError("This endpoint needs an admin key in the X-Admin-Key header.")
    if not secrets.compare_digest(x_admin_key.encode(), expected.get_secret_value().encode()):
        raise ForbiddenError("The admin key is wrong.")
