"""Reading trace records (format `sciserve.trace`, written by workers/traces.py).

The reader checks the format and version of every record, so a dataset is never built
from records it does not understand; `export` filters by strategy, correctness and
finish time, and writes the kept records as one JSONL file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FORMAT = "sciserve.trace"  # equals workers.traces.FORMAT (tests/training check it)
VERSIONS = (1,)
Correctness = Literal["true", "false", "unknown", "any"]


class RecordError(ValueError):
    """A record this reader cannot use; the message names the file and line."""


def trace_files(source: Path) -> list[Path]:
    """A JSONL file, or every `*.jsonl` in a folder (oldest first, as rotated)."""
    if source.is_dir():
        return sorted(source.glob("*.jsonl"))
    if not source.exists():
        raise RecordError(f"{source} does not exist.")
    return [source]


def read_records(sources: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every record of the sources, checked for its format and version."""
    for source in sources:
        for path in trace_files(Path(source)):
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if record.get("format") != FORMAT or record.get("version") not in VERSIONS:
                        raise RecordError(
                            f"{path}:{number} is not a {FORMAT} record of version "
                            f"{' or '.join(map(str, VERSIONS))}."
                        )
                    yield record


@dataclass(frozen=True)
class RecordFilter:
    """Which records to keep; None or "any" keeps all."""

    strategy: str | None = None  # Strategy.name: direct, adaptive, think, vote, ...
    correct: Correctness = "any"
    since: float | None = None  # Unix time, inclusive
    until: float | None = None  # Unix time, exclusive

    def keeps(self, record: dict[str, Any]) -> bool:
        if self.strategy is not None and record["strategy"]["name"] != self.strategy:
            return False
        correct = record.get("correct")
        wanted = {"true": True, "false": False, "unknown": None}.get(self.correct, correct)
        if correct is not wanted:
            return False
        finished = float(record["finished_at"])
        if self.since is not None and finished < self.since:
            return False
        return self.until is None or finished < self.until


def export(sources: Iterable[Path], out: Path, keep: RecordFilter) -> tuple[int, int]:
    """Write the kept records to `out`; returns (kept, read)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = read = 0
    with out.open("w", encoding="utf-8") as handle:
        for record in read_records(sources):
            read += 1
            if keep.keeps(record):
                kept += 1
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return kept, read
