"""Secret settings: `FOO=` (as templated manifests write it) means unset, and a tool
token too short to be a secret is refused at start-up with a message that says why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract.settings import Settings


def test_an_empty_admin_key_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCISERVE_ADMIN_KEY", "")
    assert Settings().admin_key is None  # never "" (a key anyone could send)


def test_an_empty_tool_token_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCISERVE_TOOL_TOKEN", "")
    assert Settings().tool_token is None
    monkeypatch.setenv("SCISERVE_TOOL_TOKEN", "x" * 32)
    token = Settings().tool_token
    assert token is not None and token.get_secret_value() == "x" * 32
    assert "x" * 32 not in repr(Settings())


def test_a_short_tool_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(tool_token="changeme")  # type: ignore[arg-type]
