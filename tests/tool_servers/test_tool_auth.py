"""Tool servers answer only the service: every route but /healthz needs the tool token.

Over real HTTP: a standalone `sciserve tool-server python` process (refuses to start
without a token; refuses calls without or with a wrong one; serves the right one, as a
Bearer or in X-Sciserve-Tool-Token, and to the workers' `ToolClient`), and the embedded
gateway, whose mounted tool servers refuse outside callers while a /solve whose policy
calls the python tool runs it end to end. The engine of that /solve is the
`ScriptedEngine` double (a random-weight model cannot be made to call a tool); the
gateway, queue, worker, tool client, tool server and sandbox are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from contract.errors import ToolUnavailableError
from entrypoints.embedded import EmbeddedServer, ServiceProcesses, free_port
from tests.conftest import tiny_settings
from tests.doubles import ScriptedEngine
from workers.models.tiny import TinyModel
from workers.prompts import AWL_TOOL_DECISION
from workers.tools.client import ToolClient

TOKEN = "tool-token-for-tests-0123456789abcdef"
RUN = {"tool": "write_and_run_code", "arguments": {"code": "print(6 * 7)"}}
GUARDED = [
    ("POST", "/invoke"),
    ("GET", "/manifest"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
]


def _call(client: httpx.Client, method: str, path: str, **headers: str) -> httpx.Response:
    body = {"json": RUN} if method == "POST" else {}
    return client.request(method, path, headers=headers, **body)  # type: ignore[arg-type]


def assert_guarded(client: httpx.Client, prefix: str = "") -> None:
    """Every guarded route: 401 without a token, 403 with a wrong one; /healthz open."""
    for method, path in GUARDED:
        missing = _call(client, method, prefix + path)
        assert missing.status_code == 401, (path, missing.text)
        assert "SCISERVE_TOOL_TOKEN" in missing.json()["error"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for headers in (
            {"Authorization": f"Bearer {TOKEN}x"},
            {"X-Sciserve-Tool-Token": "not-the-token"},
        ):
            wrong = _call(client, method, prefix + path, **headers)
            assert wrong.status_code == 403, (path, wrong.text)
            assert "does not match" in wrong.json()["error"]
    assert "42" not in missing.text and "42" not in wrong.text
    assert client.get(prefix + "/healthz").status_code == 200


@pytest.fixture(scope="module")
def python_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    processes = ServiceProcesses(tmp_path_factory.mktemp("tool-auth"), {})
    try:
        yield processes.start_tool_server("python", token=TOKEN)[1]
    finally:
        processes.stop_all()


def test_a_standalone_tool_server_does_not_start_without_a_token() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "SCISERVE_TOOL_TOKEN"}
    environment["SCISERVE_TOOL_TOKEN"] = ""  # empty is unset, as in a templated manifest
    started = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "tool-server", "python",
         "--port", str(free_port())],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert started.returncode == 2, started.stderr
    assert "needs SCISERVE_TOOL_TOKEN" in started.stderr
    assert "--insecure-no-token" in started.stderr


def test_a_standalone_tool_server_refuses_calls_without_the_token(python_server: str) -> None:
    with httpx.Client(base_url=python_server, timeout=60) as client:
        assert_guarded(client)
        # An unknown path gives nothing away either.
        assert client.get("/nothing-here").status_code == 401


def test_a_standalone_tool_server_serves_the_right_token(python_server: str) -> None:
    with httpx.Client(base_url=python_server, timeout=60) as client:
        for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"X-Sciserve-Tool-Token": TOKEN}):
            run = client.post("/invoke", json=RUN, headers=headers)
            assert run.status_code == 200 and run.json()["result"]["stdout"] == "42\n"
            for _, path in GUARDED[1:]:
                assert client.get(path, headers=headers).status_code == 200, path
        metrics = client.get("/metrics", headers={"X-Sciserve-Tool-Token": TOKEN}).text
        assert 'sciserve_tool_calls_total{outcome="ok",tool="write_and_run_code"}' in metrics


def test_the_worker_client_sends_the_token(python_server: str) -> None:
    async def run(token: str | None) -> Any:
        client = ToolClient(
            {"python": python_server},
            attempts=1,
            token=SecretStr(token) if token is not None else None,
        )
        try:
            return await client.invoke("write_and_run_code", {"code": "print(6 * 7)"})
        finally:
            await client.aclose()

    call = asyncio.run(run(TOKEN))
    assert call.ok and call.result["stdout"] == "42\n"
    # A worker without the token, or with another one, is misconfigured: the tool is
    # unavailable (an outcome ops see), not an answer for the model to read.
    for token in (None, "another-token-0123456789"):
        with pytest.raises(ToolUnavailableError, match="SCISERVE_TOOL_TOKEN"):
            asyncio.run(run(token))


FINAL = json.dumps(
    {
        "name": "answer_question",
        "parameters": {"thought": "", "sloving_process": "The code printed it.", "answer": "42"},
    }
)
RUN_CODE = json.dumps(
    {"name": "write_and_run_code", "parameters": {"thought": "compute", "code": "print(6 * 7)"}}
)


@pytest.fixture(scope="module")
def embedded(tiny_model: TinyModel) -> Iterator[EmbeddedServer]:
    """The embedded service with its tool servers mounted and no token configured."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
    engine = ScriptedEngine(tokenizer, [("42", FINAL), (AWL_TOOL_DECISION, RUN_CODE)])
    settings = tiny_settings(tiny_model, port=free_port(), sandbox_warm=1)
    assert settings.tool_token is None
    with EmbeddedServer(settings, ready_timeout_s=240, engine=engine) as server:
        yield server


def test_embedded_tool_mounts_refuse_outside_callers_while_solve_uses_them(
    embedded: EmbeddedServer,
) -> None:
    with embedded.client() as client:
        for name in ("python", "pde"):
            assert_guarded(client, f"/tools/{name}")
        solved = client.post(
            "/solve",
            json={"problem": "What is 6 * 7?", "tools": ["python"], "reference": "42",
                  "return_trace": True},
        )  # fmt: skip
    assert solved.status_code == 200, solved.text
    result = solved.json()
    assert result["answer"] == "42" and result["correct"] is True
    assert result["used_tools"] == ["write_and_run_code"]
    [[call]] = result["trace"][0]["detail"]["tool_calls"]
    assert call["status_code"] == 200 and call["result"]["stdout"] == "42\n"
    # The token the worker used was made for this process: nobody configured one.
    token = embedded.app.state.settings.tool_token
    assert token is not None and len(token.get_secret_value()) >= 32
    with embedded.client() as client:
        run = client.post(
            "/tools/python/invoke",
            json=RUN,
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        )
    assert run.status_code == 200 and run.json()["result"]["stdout"] == "42\n"
