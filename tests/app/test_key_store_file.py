"""The SQLite key store's file (API key hashes) is readable by its owner only: made
with mode 0600 whatever the umask, and an existing looser file is tightened."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from app.auth import SqliteKeyStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_key_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keys.sqlite"
    previous = os.umask(0o022)  # the usual umask: files would be world-readable
    try:
        store = SqliteKeyStore(path)
        key = asyncio.run(store.create("alice", ["solve"]))
    finally:
        os.umask(previous)
    assert _mode(path) == 0o600
    principal = asyncio.run(store.lookup(key))
    assert principal is not None and principal.name == "alice"


def test_an_existing_key_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    key = asyncio.run(SqliteKeyStore(path).create("bob", ["solve"]))
    path.chmod(0o644)
    store = SqliteKeyStore(path)
    assert _mode(path) == 0o600
    assert asyncio.run(store.lookup(key)) is not None  # the keys are kept
