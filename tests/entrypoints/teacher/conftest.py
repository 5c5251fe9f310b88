"""The teacher's tests run against the real tool servers (tests/conftest.py
`tool_servers`, over HTTP) and AWL's shared test sets."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from entrypoints.teacher.leak import ReservedKeys, load_test_sets
from workers.tools.client import ToolClient

DATA = Path(os.environ.get("SCISERVE_AWL_DATA", Path(__file__).parents[4] / "shared/data/awl"))


@pytest.fixture(scope="session")
def awl_data() -> Path:
    if not (DATA / "pde.json").exists():
        pytest.skip(f"AWL test sets not found at {DATA} (set SCISERVE_AWL_DATA)")
    return DATA


@pytest.fixture(scope="session")
def reserved(awl_data: Path) -> ReservedKeys:
    return load_test_sets(awl_data)


@pytest.fixture()
async def tools(tool_servers: dict[str, str]) -> AsyncIterator[ToolClient]:
    """The served policy's tool client on the five real servers."""
    client = ToolClient(tool_servers, attempts=1, timeout_s=300)
    yield client
    await client.aclose()
