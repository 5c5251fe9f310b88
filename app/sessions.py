"""Browser sessions for the trace pages (`/ui/`): an API key, presented once, becomes an
HttpOnly, SameSite=Strict cookie, because a page's `EventSource` cannot send an
`Authorization` header, and a key in a URL would land in histories and logs.

- `POST /ui/session` with the key (through the one auth dependency) sets the cookie: a
  random token. The store keeps only the token's SHA-256 and the key's id (its hash),
  for `SESSION_TTL_S`; the browser keeps the token until it closes.
- A request that brings no key but the cookie acts as that key for reading only (GET
  and HEAD, `READ_METHODS`): every request that submits, cancels or administers still
  needs the key itself, so a cookie a browser sends on its own can change nothing, and
  SameSite=Strict keeps other sites' pages from sending it at all.
- The key is looked up again on every request: a revoked key's sessions end with it, and
  a key that loses a scope loses it in its sessions too.
- `DELETE /ui/session` ends the session; an expired one answers 401 and the page asks
  for the key again.

Sessions live where the keys live: in Redis, or in the SQLite key file of one box.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

SESSION_COOKIE = "sciserve_session"
SESSION_TTL_S = 8 * 3600  # a working day; the page asks for the key again after it
READ_METHODS = frozenset({"GET", "HEAD"})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "ss-" + secrets.token_urlsafe(32)


class SessionStore(Protocol):
    async def open(self, key_hash: str) -> str:
        """A new session of the key whose id is `key_hash`; returns its token."""
        ...

    async def key_of(self, token: str) -> str | None:
        """The key id of a live session, or None (unknown or expired)."""
        ...

    async def close(self, token: str) -> None: ...


class RedisSessions:
    """`P:uisession:sha256(token)` → the key's id, expiring with the session."""

    def __init__(self, client: Any, prefix: str, ttl_s: int = SESSION_TTL_S):
        self.redis = client
        self.prefix = prefix
        self.ttl_s = ttl_s

    def _key(self, token: str) -> str:
        return f"{self.prefix}:uisession:{_digest(token)}"

    async def open(self, key_hash: str) -> str:
        token = new_token()
        await self.redis.set(self._key(token), key_hash, ex=self.ttl_s)
        return token

    async def key_of(self, token: str) -> str | None:
        value = await self.redis.get(self._key(token))
        return str(value) if value is not None else None

    async def close(self, token: str) -> None:
        await self.redis.delete(self._key(token))


class SqliteSessions:
    """Table `ui_sessions(hash, key_hash, expires_at)` in the SQLite key file
    (`SCISERVE_KEY_STORE`, already owner-only); expired rows go when a session opens."""

    def __init__(self, path: Path, ttl_s: int = SESSION_TTL_S):
        self.path = path
        self.ttl_s = ttl_s
        self._run(
            "CREATE TABLE IF NOT EXISTS ui_sessions "
            "(hash TEXT PRIMARY KEY, key_hash TEXT NOT NULL, expires_at REAL NOT NULL)"
        )

    def _run(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path, timeout=5) as db:
            return db.execute(sql, args).fetchall()

    async def open(self, key_hash: str) -> str:
        token = new_token()
        now = time.time()
        await asyncio.to_thread(self._run, "DELETE FROM ui_sessions WHERE expires_at < ?", now)
        await asyncio.to_thread(
            self._run, "INSERT INTO ui_sessions VALUES (?, ?, ?)",
            _digest(token), key_hash, now + self.ttl_s,
        )  # fmt: skip
        return token

    async def key_of(self, token: str) -> str | None:
        rows = await asyncio.to_thread(
            self._run, "SELECT key_hash FROM ui_sessions WHERE hash = ? AND expires_at > ?",
            _digest(token), time.time(),
        )  # fmt: skip
        return str(rows[0][0]) if rows else None

    async def close(self, token: str) -> None:
        await asyncio.to_thread(self._run, "DELETE FROM ui_sessions WHERE hash = ?", _digest(token))
