"""Rendered chart cases, once per session (each `helm template` costs ~0.3 s)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.tools import CASES, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {case: render(*args) for case, args in CASES.items()}


@pytest.fixture(scope="session")
def defaults(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["defaults"]
