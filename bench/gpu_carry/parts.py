"""Carry a set of files to a machine in parts of bounded size, and put them back together.

A GPU machine without a package index takes at most 64 MiB of files per command, the
project's working tree included, and keeps its `/tmp` only while it stays in use. So the
set is cut into parts that go over one per command, back to back. Files are laid end to
end and cut at part boundaries: the part count is the least the limit allows, and a file
larger than a part (the vLLM wheel, 290 MiB) becomes byte chunks in several parts.

Every chunk has its own SHA-256 and every part carries the whole manifest, so a part is
checked on its own as it arrives; the assembled file is checked again against the hash
of the original download. Storing a part is idempotent (a chunk already stored with the
right hash is left alone), so parts can arrive in any order and be sent twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
MANIFEST = "manifest.json"
FORMAT = 1
_BLOCK = 1 << 22


class CarryError(Exception):
    """A part or file that is missing, corrupt or from another kit: the message says which
    part to send again."""


@dataclass(frozen=True)
class Chunk:
    """Bytes `offset .. offset+size` of a file, stored as `name` in part `part`."""

    part: int
    name: str
    offset: int
    size: int
    sha256: str


@dataclass(frozen=True)
class CarriedFile:
    """One file of the set: a wheel to install or a file of the demo model."""

    name: str  # distribution or model name
    version: str
    kind: str  # "wheel" or "model"
    filename: str
    sha256: str
    size: int
    chunks: tuple[Chunk, ...] = ()

    @property
    def parts(self) -> list[int]:
        return sorted({c.part for c in self.chunks})


@dataclass(frozen=True)
class Manifest:
    """The whole kit: its files in install order and the parts they lie in."""

    files: tuple[CarriedFile, ...]
    part_limit: int
    parts: tuple[int, ...]  # bytes of payload in part 1, 2, ...
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kit_id(self) -> str:
        """Names a kit: parts of two different `prepare` runs must not mix."""
        files = [asdict(f) for f in self.files]
        return sha256_bytes(json.dumps(files, sort_keys=True).encode())[:16]

    def chunks_of(self, part: int) -> list[Chunk]:
        return [c for f in self.files for c in f.chunks if c.part == part]

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "kit_id": self.kit_id,
            "part_limit_bytes": self.part_limit,
            "parts": [
                {
                    "part": n,
                    "dir": part_dir_name(n),
                    "bytes": size,
                    "chunks": len(self.chunks_of(n)),
                }
                for n, size in enumerate(self.parts, start=1)
            ],
            "total_bytes": sum(f.size for f in self.files),
            "meta": self.meta,
            "files": [{**asdict(f), "part": f.parts[0] if f.parts else None} for f in self.files],
        }
        return json.dumps(body, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        if body.get("format") != FORMAT:
            raise CarryError(f"This manifest has format {body.get('format')!r}; expected {FORMAT}.")
        files = tuple(
            CarriedFile(
                name=f["name"],
                version=f["version"],
                kind=f["kind"],
                filename=f["filename"],
                sha256=f["sha256"],
                size=f["size"],
                chunks=tuple(Chunk(**c) for c in f["chunks"]),
            )
            for f in body["files"]
        )
        manifest = cls(
            files,
            body["part_limit_bytes"],
            tuple(p["bytes"] for p in body["parts"]),
            body.get("meta", {}),
        )
        if manifest.kit_id != body.get("kit_id"):
            raise CarryError("The manifest's kit id does not match its file list: it was edited.")
        return manifest


def part_dir_name(part: int) -> str:
    return f"part-{part:02d}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, offset: int = 0, size: int | None = None) -> str:
    """SHA-256 of a file, or of `size` bytes from `offset`."""
    digest = hashlib.sha256()
    for block in _read_range(path, offset, size):
        digest.update(block)
    return digest.hexdigest()


def _read_range(path: Path, offset: int, size: int | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        left = size if size is not None else -1
        while left != 0:
            block = handle.read(_BLOCK if left < 0 else min(_BLOCK, left))
            if not block:
                break
            left -= len(block) if left > 0 else 0
            yield block


@dataclass(frozen=True)
class SourceFile:
    """A file to carry, before it is cut into parts."""

    name: str
    version: str
    kind: str
    path: Path


def plan_parts(sources: Iterable[SourceFile], part_limit: int) -> Manifest:
    """Lay the files end to end in the given order and cut every `part_limit` bytes."""
    if part_limit <= 0:
        raise CarryError(f"A part limit of {part_limit} bytes leaves no room to carry anything.")
    files: list[CarriedFile] = []
    part, used = 1, 0
    sizes: list[int] = []
    for source in sources:
        size = source.path.stat().st_size
        pieces: list[tuple[int, int, int]] = []  # (part, offset, size)
        offset = 0
        while offset < size or (size == 0 and not pieces):
            if used == part_limit:
                sizes.append(used)
                part, used = part + 1, 0
            take = min(size - offset, part_limit - used)
            pieces.append((part, offset, take))
            offset, used = offset + take, used + take
        chunks = tuple(
            Chunk(
                part=p,
                name=source.path.name if len(pieces) == 1 else f"{source.path.name}.chunk-{i:02d}",
                offset=o,
                size=s,
                sha256=sha256_file(source.path, o, s),
            )
            for i, (p, o, s) in enumerate(pieces, start=1)
        )
        whole = chunks[0].sha256 if len(chunks) == 1 else sha256_file(source.path)
        files.append(
            CarriedFile(
                source.name, source.version, source.kind, source.path.name, whole, size, chunks
            )
        )
    sizes.append(used)
    names = [f.filename for f in files]
    if len(set(names)) != len(names):
        raise CarryError("Two files of the set have the same name; a part holds one of each.")
    return Manifest(tuple(files), part_limit, tuple(sizes))


def write_parts(manifest: Manifest, sources: dict[str, Path], out: Path) -> list[Path]:
    """Write `out/part-NN/` folders: each part's chunks and the whole manifest."""
    text = manifest.to_json()
    for stale in out.glob("part-*"):  # an earlier kit may have had more parts
        shutil.rmtree(stale)
    dirs = []
    for n in range(1, len(manifest.parts) + 1):
        folder = out / part_dir_name(n)
        folder.mkdir(parents=True)
        (folder / MANIFEST).write_text(text)
        dirs.append(folder)
    for carried in manifest.files:
        for chunk in carried.chunks:
            target = out / part_dir_name(chunk.part) / chunk.name
            with target.open("wb") as handle:
                for block in _read_range(sources[carried.filename], chunk.offset, chunk.size):
                    handle.write(block)
    (out / MANIFEST).write_text(text)
    return dirs


def working_tree_bytes(repo: Path) -> int:
    """What travels with every command: tracked files plus untracked files git does not
    ignore (ignored build outputs stay behind unless named to carry)."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout
    total = 0
    for name in {n for n in listed.decode().split("\0") if n}:
        path = repo / name
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


# Receiving and assembling, on the GPU machine: standard library only.


def _read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise CarryError(f"{folder} has no {MANIFEST}: it is not a part of a carry kit.")
    return Manifest.from_json(path.read_text())


def part_number(folder: Path, manifest: Manifest) -> int:
    """Which part a folder is: by its name, checked against the chunks it holds."""
    name = folder.resolve().name
    for n in range(1, len(manifest.parts) + 1):
        if name == part_dir_name(n):
            return n
    raise CarryError(f"{folder} is not named part-NN with NN in 1..{len(manifest.parts)}.")


def _store(source: Path, target: Path) -> None:
    """Copy through a temporary file in the target folder, then rename: a half-written
    chunk never carries the final name."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class Received:
    part: int
    stored: int  # chunks copied now
    kept: int  # chunks already there with the right hash
    missing_parts: list[int]


def receive(part_dir: Path, into: Path) -> Received:
    """Check one part's chunks against the manifest and store them under `into`."""
    manifest = _read_manifest(part_dir)
    part = part_number(part_dir, manifest)
    into.mkdir(parents=True, exist_ok=True)
    held = into / MANIFEST
    if held.is_file():
        other = Manifest.from_json(held.read_text())
        if other.kit_id != manifest.kit_id:
            raise CarryError(
                f"{into} holds parts of kit {other.kit_id}, but {part_dir} belongs to kit "
                f"{manifest.kit_id}; receive into an empty folder or remove {into}."
            )
    store = into / "chunks"
    store.mkdir(exist_ok=True)
    stored = kept = 0
    for chunk in manifest.chunks_of(part):
        source = part_dir / chunk.name
        if not source.is_file():
            raise CarryError(
                f"Part {part} ({part_dir}) lacks its chunk {chunk.name}; prepare the kit again."
            )
        if sha256_file(source) != chunk.sha256:
            raise CarryError(
                f"Part {part}: chunk {chunk.name} is corrupt (SHA-256 differs "
                f"from the manifest); send {part_dir_name(part)} again."
            )
        target = store / chunk.name
        if _chunk_ok(target, chunk):
            kept += 1
            continue
        _store(source, target)
        stored += 1
    if not held.is_file():
        held.write_text(manifest.to_json())
    return Received(part, stored, kept, missing_parts(into, manifest))


def _chunk_ok(path: Path, chunk: Chunk) -> bool:
    return (
        path.is_file() and path.stat().st_size == chunk.size and sha256_file(path) == chunk.sha256
    )


def missing_parts(into: Path, manifest: Manifest) -> list[int]:
    """Parts with a chunk not stored yet (by presence and size; hashes are checked at
    assembly)."""
    missing = set()
    for carried in manifest.files:
        for chunk in carried.chunks:
            path = into / "chunks" / chunk.name
            if not path.is_file() or path.stat().st_size != chunk.size:
                missing.add(chunk.part)
    return sorted(missing)


def assemble(into: Path) -> tuple[Manifest, list[Path]]:
    """Verify every chunk, join each file in manifest order and verify it whole.

    Every missing or corrupt chunk is named in one error, with the parts to send again.
    """
    if not (into / MANIFEST).is_file():
        raise CarryError(f"{into} holds no received part (no {MANIFEST}); receive the parts first.")
    manifest = Manifest.from_json((into / MANIFEST).read_text())
    problems: list[str] = []
    resend: set[int] = set()
    for carried in manifest.files:
        for chunk in carried.chunks:
            path = into / "chunks" / chunk.name
            if not path.is_file():
                problems.append(f"part {chunk.part}: chunk {chunk.name} is missing")
            elif not _chunk_ok(path, chunk):
                problems.append(f"part {chunk.part}: chunk {chunk.name} is corrupt")
            else:
                continue
            resend.add(chunk.part)
    if problems:
        again = ", ".join(part_dir_name(p) for p in sorted(resend))
        raise CarryError(f"Cannot assemble the kit ({'; '.join(problems)}); receive {again} again.")
    out = into / "files"
    out.mkdir(exist_ok=True)
    paths = []
    for carried in manifest.files:
        target = out / carried.filename
        if not (
            target.is_file()
            and target.stat().st_size == carried.size
            and sha256_file(target) == carried.sha256
        ):
            _join(into / "chunks", carried, target)
        paths.append(target)
    return manifest, paths


def _join(chunks: Path, carried: CarriedFile, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as handle:
            for chunk in carried.chunks:
                for block in _read_range(chunks / chunk.name, 0, None):
                    digest.update(block)
                    handle.write(block)
        if digest.hexdigest() != carried.sha256:
            raise CarryError(
                f"{carried.filename} joined from parts {carried.parts} does not "
                "hash to the manifest's SHA-256; prepare the kit again."
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
