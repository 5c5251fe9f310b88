"""API keys with scopes, stored hashed in Redis, and a per-key rate limit.

A key is shown once when created (`sciserve keys create`); Redis keeps only its
SHA-256, so a leaked database leaks no usable key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

from contract.errors import SciserveError

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


class RedisKeyStore:
    """Hash `P:apikeys`: sha256(key) → {name, scopes}."""

    def __init__(self, client: Any, prefix: str):
        self.redis = client
        self.key = f"{prefix}:apikeys"

    async def create(self, name: str, scopes: list[str]) -> str:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"Unknown scopes {unknown}; scopes are {', '.join(SCOPES)}.")
        key = "sk-" + secrets.token_urlsafe(32)
        await self.redis.hset(
            self.key, hash_key(key), json.dumps({"name": name, "scopes": sorted(set(scopes))})
        )
        return key

    async def lookup(self, key: str) -> Principal | None:
        digest = hash_key(key)
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


class RateLimiter:
    """Fixed one-minute windows per key in Redis: INCR, with the window's expiry."""

    def __init__(self, client: Any, prefix: str, per_minute: int):
        self.redis = client
        self.prefix = prefix
        self.per_minute = per_minute

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
            retry_after = max(1, 60 - int(time.time() % 60))
            raise RateLimitedError(
                f"Rate limit of {self.per_minute} requests per minute reached for key "
                f"{principal.name!r}; retry in {retry_after} s.",
                retry_after,
            )
