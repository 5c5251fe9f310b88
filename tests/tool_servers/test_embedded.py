"""The embedded default (`sciserve serve`) mounts every tool server under /tools/NAME."""

from __future__ import annotations

from entrypoints.embedded import EmbeddedServer
from tool_servers.registry import SERVER_NAMES


def test_embedded_gateway_serves_every_tool_server(service: EmbeddedServer) -> None:
    with service.client() as client:
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
    """With no SCISERVE_TOOL_URLS, a worker's client reaches the gateway's own mounts."""
    from workers.tools.client import ToolClient

    settings = service.settings.model_copy(update={"tool_timeout_s": 12.5})
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
