"""Injected dependencies: the queue, readiness, the adapter admin surface, and auth.

Routers depend on these only; tests swap implementations through
`app.dependency_overrides`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol

from fastapi import Depends, Header, Path, Request

from app.adapter_pool import PoolAdapterAdmin
from app.auth import Limiter, Principal, RateLimitedError
from app.metrics import AUTH_FAILURES
from app.sessions import READ_METHODS, SESSION_COOKIE, SessionStore
from app.solving import Submitter, owned_status
from contract.errors import AuthError, ConflictError, ForbiddenError
from contract.schemas import AdapterInfo, AdapterLoad, JobStatus
from contract.settings import Settings
from jobqueue.adapter_set import AdapterSet
from jobqueue.protocol import JobQueue


class AdapterAdmin(Protocol):
    async def load_adapter(self, body: AdapterLoad) -> AdapterInfo: ...

    async def unload_adapter(self, name: str) -> None: ...

    async def list_adapters(self) -> list[AdapterInfo]: ...


class Readiness(Protocol):
    async def readiness(self) -> tuple[bool, str]: ...


class BackgroundWorker(Readiness, AdapterAdmin, Protocol):
    """A worker run beside the gateway in one process (the embedded default)."""

    def start_background(self) -> None: ...

    async def stop(self) -> None: ...


async def client_gone(request: Request) -> None:
    """Returns once the HTTP client has disconnected (the body is already read, so the
    next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_limiter(request: Request) -> Limiter | None:
    """The per-key request and token limits (None when keys are off)."""
    limiter: Limiter | None = getattr(request.app.state, "limiter", None)
    return limiter


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


def get_readiness(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.readiness
    return readiness


def get_adapter_admin(request: Request) -> AdapterAdmin:
    """The worker beside this app (embedded service, or a worker's own port), else,
    on a gateway over Redis, the whole pool through the adapter set in Redis."""
    admin: AdapterAdmin | None = getattr(request.app.state, "adapter_admin", None)
    if admin is not None:
        return admin
    redis = getattr(get_queue(request), "redis", None)
    if redis is None:
        raise ConflictError("This gateway runs no engine and no worker pool to manage.")
    return PoolAdapterAdmin(AdapterSet(redis, get_settings(request).redis_prefix))


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return request.headers.get("x-api-key") or None


def get_sessions(request: Request) -> SessionStore | None:
    """The browser sessions of the trace pages (app/sessions.py); None when keys are off."""
    sessions: SessionStore | None = getattr(request.app.state, "sessions", None)
    return sessions


def _session_token(request: Request) -> str | None:
    """The session cookie, on a reading request only: a cookie the browser sends on its
    own must never submit, cancel or administer (app/sessions.py)."""
    if request.method not in READ_METHODS:
        return None
    return request.cookies.get(SESSION_COOKIE) or None


async def authenticate(request: Request) -> Principal:
    """The caller's principal; with keys off, `anonymous` with the configured scopes.
    A key comes in a header, or, for reading, as a trace page's session cookie."""
    settings = get_settings(request)
    if not settings.api_keys_required:
        return Principal(name="anonymous", scopes=frozenset(settings.anonymous_scopes))
    key = _presented_key(request)
    token = _session_token(request) if key is None else None
    sessions = get_sessions(request)
    if key is None and (token is None or sessions is None):
        AUTH_FAILURES.labels(reason="missing_key").inc()
        raise AuthError("This endpoint needs an API key: send 'Authorization: Bearer <key>'.")
    if key is not None:
        principal = await request.app.state.keys.lookup(key)
    else:
        assert token is not None and sessions is not None
        key_hash = await sessions.key_of(token)
        principal = await request.app.state.keys.lookup_hash(key_hash) if key_hash else None
    if principal is None:
        AUTH_FAILURES.labels(reason="bad_key").inc()
        raise AuthError(
            "The API key is not valid."
            if key is not None
            else "The session has ended (expired, signed out, or its key revoked); sign in "
            "again with an API key."
        )
    try:
        await request.app.state.limiter.check(principal)
    except RateLimitedError:
        AUTH_FAILURES.labels(reason="rate_limited").inc()
        raise
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys holding `scope`."""

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        return _holding(principal, scope)

    return dependency


def _holding(principal: Principal, scope: str) -> Principal:
    if scope not in principal.scopes:
        AUTH_FAILURES.labels(reason="scope").inc()
        raise ForbiddenError(f"This API key lacks the {scope!r} scope.")
    return principal


async def require_admin(
    request: Request, x_admin_key: str | None = Header(default=None, alias="X-Admin-Key")
) -> None:
    """Admin endpoints take `X-Admin-Key` (SCISERVE_ADMIN_KEY) or an API key with the
    `admin` scope."""
    settings = get_settings(request)
    expected = settings.admin_key
    secret = expected.get_secret_value() if expected is not None else ""
    if not secret:  # an empty admin key is no admin key: unset refuses all
        expected = None
    if x_admin_key is not None:
        # An empty header never matches, whatever is configured.
        if (
            expected is not None
            and x_admin_key
            and secrets.compare_digest(x_admin_key.encode(), secret.encode())
        ):
            return
        AUTH_FAILURES.labels(reason="bad_key").inc()
        raise ForbiddenError("The admin key is wrong.")
    if settings.api_keys_required and _presented_key(request) is not None:
        principal = await authenticate(request)
        if "admin" in principal.scopes:
            return
        AUTH_FAILURES.labels(reason="scope").inc()
        raise ForbiddenError("This API key lacks the 'admin' scope.")
    if expected is None and not settings.api_keys_required:
        raise ForbiddenError("Admin endpoints are disabled: set SCISERVE_ADMIN_KEY to enable them.")
    AUTH_FAILURES.labels(reason="missing_key").inc()
    raise AuthError("This endpoint needs an admin key in the X-Admin-Key header.")


# --- the doors' shared dependencies (as the full-stack template's api/deps.py) ---

SolveCaller = Annotated[Principal, Depends(require_scope("solve"))]
"""Every route of the solving API: a key (when keys are on), its request-rate limit and
the `solve` scope."""

# The doors that take work; a bounded label for the refusal metrics.
_DOORS = {"/solve": "solve", "/jobs": "jobs", "/v1/chat/completions": "openai"}


def _cache_generation_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}:cache:generation"


async def cache_generation(request: Request) -> str:
    """The adapter generation the result cache is keyed by: bumped by every adapter
    load or unload (`bump_cache_generation`), in Redis when a pool shares it."""
    redis = getattr(get_queue(request), "redis", None)
    if redis is not None:
        return str(await redis.get(_cache_generation_key(get_settings(request))) or 0)
    return str(getattr(request.app.state, "cache_generation", 0))


async def bump_cache_generation(request: Request) -> None:
    """Adapters changed: answers cached before no longer stand for the service."""
    redis = getattr(get_queue(request), "redis", None)
    if redis is not None:
        await redis.incr(_cache_generation_key(get_settings(request)))
    request.app.state.cache_generation = getattr(request.app.state, "cache_generation", 0) + 1


async def get_submitter(
    request: Request,
    principal: SolveCaller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Submitter:
    """What every door that takes work uses: auth (through `SolveCaller`), then, at
    submit, permissions, the cost checks, idempotency replay and the token budget."""
    settings = get_settings(request)
    route = request.scope.get("route")
    return Submitter(
        queue=get_queue(request),
        settings=settings,
        principal=principal,
        door=_DOORS.get(getattr(route, "path", ""), "other"),
        limiter=get_limiter(request),
        idempotency_key=idempotency_key,
        cache_generation=await cache_generation(request) if settings.result_cache else "0",
        trace_context=getattr(request.state, "trace_context", None),
    )


SubmitDep = Annotated[Submitter, Depends(get_submitter)]


async def get_owned_job(
    request: Request, principal: SolveCaller, job_id: Annotated[str, Path()]
) -> JobStatus:
    """A job the caller may see: its own (another key's is a 404, as an unknown one)."""
    return await owned_status(get_queue(request), job_id, principal)


OwnedJob = Annotated[JobStatus, Depends(get_owned_job)]


async def page_viewer(request: Request) -> Principal | None:
    """A trace page's reader, as `SolveCaller` admits it, or None when nobody is signed
    in (no key, no live session): the page then serves its sign-in form with a 401. A
    key without the `solve` scope is still a 403."""
    try:
        principal = await authenticate(request)
    except AuthError:
        return None
    return _holding(principal, "solve")


PageViewer = Annotated[Principal | None, Depends(page_viewer)]
SessionsDep = Annotated[SessionStore | None, Depends(get_sessions)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
