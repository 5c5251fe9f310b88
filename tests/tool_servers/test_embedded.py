"""The embedded default (`sciserve serve`) mounts every tool server under /tools/NAME,
usable only with the per-process tool token its worker holds."""

from __future__ import annotations

import httpx

from entrypoints.embedded import EmbeddedServer
from tool_servers.registry import SERVER_NAMES


def _token_headers(service: EmbeddedServer) -> dict[str, str]:
    token = service.app.state.settings.tool_token
    assert token is not None, "the embedded service makes a tool token when none is set"
    return {"X-Sciserve-Tool-Token": token.get_secret_value()}


def test_embedded_tool_servers_refuse_callers_without_the_token(service: EmbeddedServer) -> None:
    """The mounts share the gateway's port: without the token nothing but /healthz
    answers, so no outside caller runs code past the API's keys and budgets."""
    with service.client() as client:
        for name in SERVER_NAMES:
            base = f"/tools/{name}"
            assert client.get(f"{base}/healthz").status_code == 200
            for path in ("/manifest", "/docs", "/openapi.json", "/metrics"):
                response = client.get(base + path)
                assert response.status_code == 401, (name, path, response.text)
                assert "SCISERVE_TOOL_TOKEN" in response.json()["error"]
            wrong = client.get(f"{base}/manifest", headers={"X-Sciserve-Tool-Token": "guess"})
            assert wrong.status_code == 403
        run = client.post(
            "/tools/python/invoke",
            json={"tool": "write_and_run_code", "arguments": {"code": "print(6 * 7)"}},
        )
        assert run.status_code == 401 and "42" not in run.text
        # The gateway's own routes are not behind the tool token.
        assert client.get("/healthz").status_code == 200


def test_embedded_gateway_serves_every_tool_server(service: EmbeddedServer) -> None:
    headers = _token_headers(service)
    with httpx.Client(base_url=service.url, timeout=600, headers=headers) as client:
        for name in SERVER_NAMES:
            assert client.get(f"/tools/{name}/healthz").json()["server"] == name
            assert client.get(f"/tools/{name}/manifest").status_code == 200
        run = client.post(
            "/tools/python/invoke",
            json={"tool": "write_and_run_code", "arguments": {"code": "print(6 * 7)"}},
        )
        assert run.status_code == 200 and run.json()["result"]["stdout"] == "42\n"
        sir = client.post(
            "/tools/epidemiology/invoke",
            json={
                "tool": "simulate_epidemic",
                "arguments": {
                    "model": "SIR",
                    "population": 1000,
                    "r0": 2,
                    "infectious_period_days": 5,
                    "initial_infected": 1,
                    "days": 300,
                    "output": "final_size",
                },
            },
        )
        assert sir.status_code == 200 and 780 < sir.json()["result"]["value"] < 800


async def test_client_from_settings_finds_the_embedded_mounts(service: EmbeddedServer) -> None:
    """With no SCISERVE_TOOL_URLS, a worker's client reaches the gateway's own mounts,
    with the token from the settings the worker was given."""
    from workers.tools.client import ToolClient

    settings = service.app.state.settings.model_copy(update={"tool_timeout_s": 12.5})
    client = ToolClient.from_settings(settings)
    try:
        assert client.timeout_s == 12.5
        assert set(client.servers) == set(SERVER_NAMES)
        names = {spec["function"]["name"] for spec in await client.manifest()}
        assert {"write_and_run_code", "setup_and_solve", "simulate_epidemic"} <= names
    finally:
        await client.aclose()


def test_client_from_settings_prefers_configured_urls(service: EmbeddedServer) -> None:
    from workers.tools.client import ToolClient

    urls = {"pde": "http://pde.internal:8100"}
    client = ToolClient.from_settings(service.settings.model_copy(update={"tool_urls": urls}))
    assert client.servers == urls
