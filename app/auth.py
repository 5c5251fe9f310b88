"""API keys with scopes, stored hashed, and per-key limits on requests and tokens.

A key is shown once when created (`sciserve keys create`); the store keeps only its
SHA-256, so a leaked database leaks no usable key. Keys live in Redis in distributed
mode, or in a local SQLite file (`SCISERVE_KEY_STORE`) so one box can be exposed
without Redis; the limits are per minute, in Redis or in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from app.metrics import AUTH_FAILURES
from contract.errors import ForbiddenError, SciserveError

Scope = Literal["solve", "reveal_thoughts", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)


class RateLimitedError(SciserveError):
    status_code = 429

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}  # type: ignore[misc]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a named key (or `anonymous`) and what it may do."""

    name: str
    scopes: frozenset[str]
    key_hash: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(scopes: list[str]) -> str:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"Unknown scopes {unknown}; scopes are {', '.join(SCOPES)}.")
    return "sk-" + secrets.token_urlsafe(32)


class KeyStore(Protocol):
    async def create(self, name: str, scopes: list[str]) -> str: ...

    async def lookup(self, key: str) -> Principal | None: ...

    async def lookup_hash(self, digest: str) -> Principal | None:
        """The key whose SHA-256 is `digest` (a browser session holds only that)."""
        ...

    async def revoke(self, name: str) -> int: ...


class RedisKeyStore:
    """Hash `P:apikeys`: sha256(key) → {name, scopes}."""

    def __init__(self, client: Any, prefix: str):
        self.redis = client
        self.key = f"{prefix}:apikeys"

    async def create(self, name: str, scopes: list[str]) -> str:
        key = new_key(scopes)
        await self.redis.hset(
            self.key, hash_key(key), json.dumps({"name": name, "scopes": sorted(set(scopes))})
        )
        return key

    async def lookup(self, key: str) -> Principal | None:
        return await self.lookup_hash(hash_key(key))

    async def lookup_hash(self, digest: str) -> Principal | None:
        raw = await self.redis.hget(self.key, digest)
        if raw is None:
            return None
        entry = json.loads(raw)
        return Principal(name=entry["name"], scopes=frozenset(entry["scopes"]), key_hash=digest)

    async def revoke(self, name: str) -> int:
        removed = 0
        for digest, raw in (await self.redis.hgetall(self.key)).items():
            if json.loads(raw)["name"] == name:
                removed += await self.redis.hdel(self.key, digest)
        return removed


class SqliteKeyStore:
    """Table `api_keys(hash, name, scopes)` in a local file: keys for one box, no Redis.
    Calls are tiny and run in a thread, so the event loop never waits on the disk."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only before SQLite opens it (SQLite would create it with the umask's
        # mode, often world-readable), and an existing file is tightened: it holds the
        # key hashes. SQLite gives its journal and WAL files the database file's mode.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS api_keys "
                "(hash TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5)

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._connect() as db:
            return db.execute(sql, args).fetchall()

    def _execute(self, sql: str, *args: Any) -> int:
        with self._connect() as db:
            return db.execute(sql, args).rowcount

    async def create(self, name: str, scopes: list[str]) -> str:
        key = new_key(scopes)
        await asyncio.to_thread(
            self._execute, "INSERT INTO api_keys VALUES (?, ?, ?)",
            hash_key(key), name, json.dumps(sorted(set(scopes))),
        )  # fmt: skip
        return key

    async def lookup(self, key: str) -> Principal | None:
        return await self.lookup_hash(hash_key(key))

    async def lookup_hash(self, digest: str) -> Principal | None:
        rows = await asyncio.to_thread(
            self._query, "SELECT name, scopes FROM api_keys WHERE hash = ?", digest
        )
        if not rows:
            return None
        name, scopes = rows[0]
        return Principal(name=name, scopes=frozenset(json.loads(scopes)), key_hash=digest)

    async def revoke(self, name: str) -> int:
        return await asyncio.to_thread(self._execute, "DELETE FROM api_keys WHERE name = ?", name)


class Limiter(Protocol):
    async def check(self, principal: Principal) -> None: ...

    async def charge_tokens(self, principal: Principal, tokens: int) -> None: ...


def _retry_after() -> int:
    return max(1, 60 - int(time.time() % 60))


def _refuse_requests(principal: Principal, per_minute: int) -> RateLimitedError:
    return RateLimitedError(
        f"Rate limit of {per_minute} requests per minute reached for key "
        f"{principal.name!r}; retry in {_retry_after()} s.",
        _retry_after(),
    )


def _refuse_tokens(principal: Principal, tokens: int, used: int, per_minute: int) -> Exception:
    return RateLimitedError(
        f"Token budget of {per_minute} tokens per minute reached for key {principal.name!r} "
        f"({used} already spent this minute, this request may generate {tokens}); retry in "
        f"{_retry_after()} s.",
        _retry_after(),
    )


class RateLimiter:
    """Fixed one-minute windows per key in Redis: INCR, with the window's expiry; the
    token budget (like OpenAI's TPM) charges each request's possible generation."""

    def __init__(
        self, client: Any, prefix: str, per_minute: int, tokens_per_minute: int | None = None
    ):
        self.redis = client
        self.prefix = prefix
        self.per_minute = per_minute
        self.tokens_per_minute = tokens_per_minute

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        if principal.key_hash is None or self.tokens_per_minute is None:
            return
        window = int(time.time() // 60)
        key = f"{self.prefix}:tokens:{principal.key_hash[:32]}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, tokens)
            pipe.expire(key, 61)
            total, _ = await pipe.execute()
        if total > self.tokens_per_minute:
            await self.redis.decrby(key, tokens)  # a refused request spends nothing
            raise _refuse_tokens(principal, tokens, total - tokens, self.tokens_per_minute)

    async def check(self, principal: Principal) -> None:
        if principal.key_hash is None:
            return
        window = int(time.time() // 60)
        key = f"{self.prefix}:ratelimit:{principal.key_hash[:32]}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 61)
            count, _ = await pipe.execute()
        if count > self.per_minute:
            raise _refuse_requests(principal, self.per_minute)


class LocalRateLimiter:
    """The same one-minute windows in this process, for the embedded mode's keys."""

    def __init__(self, per_minute: int, tokens_per_minute: int | None = None):
        self.per_minute = per_minute
        self.tokens_per_minute = tokens_per_minute
        self._window = -1
        self._requests: Counter[str] = Counter()
        self._tokens: Counter[str] = Counter()

    def _roll(self) -> None:
        window = int(time.time() // 60)
        if window != self._window:
            self._window = window
            self._requests.clear()
            self._tokens.clear()

    async def check(self, principal: Principal) -> None:
        if principal.key_hash is None:
            return
        self._roll()
        self._requests[principal.key_hash] += 1
        if self._requests[principal.key_hash] > self.per_minute:
            raise _refuse_requests(principal, self.per_minute)

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        if principal.key_hash is None or self.tokens_per_minute is None:
            return
        self._roll()
        used = self._tokens[principal.key_hash]
        if used + tokens > self.tokens_per_minute:
            raise _refuse_tokens(principal, tokens, used, self.tokens_per_minute)
        self._tokens[principal.key_hash] += tokens


def allowed(principal: Principal, *, reveal_thoughts: bool) -> None:
    """Request-level permissions beyond the endpoint's scope."""
    if reveal_thoughts and "reveal_thoughts" not in principal.scopes:
        AUTH_FAILURES.labels(reason="scope").inc()
        if principal.key_hash is None:
            raise ForbiddenError(
                "reveal_thoughts is not allowed without an API key here; an operator can add "
                "'reveal_thoughts' to SCISERVE_ANONYMOUS_SCOPES."
            )
        raise ForbiddenError("reveal_thoughts needs an API key with the 'reveal_thoughts' scope.")
