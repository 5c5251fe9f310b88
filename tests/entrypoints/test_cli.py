"""The `sciserve` command line against the running test service."""

from __future__ import annotations

import os
import subprocess
import sys

from entrypoints.embedded import free_port
from tests.conftest import Service

PROBLEM = "What is 6 * 7?"


def _sciserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_solve_prints_the_servers_answer(service: Service) -> None:
    with service.client() as client:
        expected = client.post("/solve", json={"problem": PROBLEM}).json()
    done = _sciserve("solve", PROBLEM, "--url", service.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (expected["answer"] or expected["answer_text"]).strip()


def test_solve_reports_an_unreachable_server() -> None:
    done = _sciserve("solve", PROBLEM, "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "Could not reach" in done.stderr


def test_solve_reports_a_refused_request(service: Service) -> None:
    done = _sciserve("solve", PROBLEM, "--url", service.url, "--option", "only one")
    assert done.returncode == 1
    assert "Error 422" in done.stderr and "options" in done.stderr


def test_distributed_commands_need_redis() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SCISERVE_REDIS_URL"}
    for command in (["gateway"], ["worker"], ["keys", "create", "x", "--scope", "solve"]):
        done = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *command],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Set SCISERVE_REDIS_URL" in done.stderr


def test_empty_environment_values_mean_unset(monkeypatch) -> None:
    from contract.settings import Settings

    monkeypatch.setenv("SCISERVE_REDIS_URL", "")
    monkeypatch.setenv("SCISERVE_MODEL", "")
    settings = Settings()
    assert settings.redis_url is None and settings.model is None
    assert not settings.api_keys_required
