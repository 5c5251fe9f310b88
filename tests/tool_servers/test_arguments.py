"""Bad arguments get a 4xx with a message a model can act on, never a 500; and the
workers' client retries only connection failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from entrypoints.embedded import free_port

PDE_OK: dict[str, Any] = {
    "dimension": "1D",
    "D": 0.5,
    "T": 1.0,
    "L": 10.0,
    "ic_type": "constant",
    "ic_params": {"value": 1.0},
    "bc_type": "neumann",
    "solution_type": "get_max_value",
}

BAD = [
    ("pde", "setup_and_solve", {k: v for k, v in PDE_OK.items() if k != "D"}, "D"),
    ("pde", "setup_and_solve", {**PDE_OK, "bc_type": "robin"}, "bc_type"),
    ("pde", "setup_and_solve", {**PDE_OK, "D": "NaN"}, "D"),
    ("pde", "setup_and_solve", {**PDE_OK, "D": -1.0}, "D"),
    ("pde", "setup_and_solve", {**PDE_OK, "grid_points": 10**7}, "grid_points"),
    ("pde", "setup_and_solve", {**PDE_OK, "T": 1e12}, "T"),
    ("pde", "setup_and_solve", {**PDE_OK, "ic_type": "checkerboard"}, "checkerboard"),
    (
        "pde",
        "setup_and_solve",
        {**PDE_OK, "solution_type": "get_value_at_point", "x": 99.0},
        "outside",
    ),
    ("mechanics", "ball_simulation", {"simend": 1e5, "initial_position": [0, 0, 1]}, "simend"),
    ("mechanics", "ball_simulation", {"simend": 1, "initial_position": [0, 0]}, "initial_position"),
    (
        "mechanics",
        "ball_simulation",
        {"simend": 50, "sample_interval": 0.001, "initial_position": [0, 0, 1]},
        "samples",
    ),
    (
        "climate",
        "global_temperature",
        {"scenario": "ssp999", "start_year": 2020, "end_year": 2030},
        "scenario",
    ),
    (
        "climate",
        "global_temperature",
        {"scenario": "ssp245", "start_year": 2050, "end_year": 2030},
        "end_year",
    ),
    (
        "epidemiology",
        "simulate_epidemic",
        {
            "model": "SEIR",
            "population": 1000,
            "r0": 2,
            "infectious_period_days": 5,
            "initial_infected": 1,
            "days": 100,
            "output": "peak_day",
        },
        "incubation",
    ),
    (
        "epidemiology",
        "simulate_epidemic",
        {
            "model": "SIR",
            "population": 1000,
            "r0": 2,
            "infectious_period_days": 5,
            "initial_infected": 1,
            "days": 10**6,
            "output": "peak_day",
        },
        "days",
    ),
    ("python", "write_and_run_code", {"thought": "x"}, "code"),
    ("python", "write_and_run_code", {"code": "print(1)", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("server", "tool", "arguments", "mentions"), BAD)
def test_bad_arguments_get_a_readable_4xx(
    tool_servers: dict[str, str], server: str, tool: str, arguments: dict[str, Any], mentions: str
) -> None:
    response = httpx.post(
        f"{tool_servers[server]}/invoke", json={"tool": tool, "arguments": arguments}, timeout=60
    )
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["result"] is None
    assert mentions in body["error"], body["error"]


def test_unknown_tool_and_malformed_body(tool_servers: dict[str, str]) -> None:
    url = tool_servers["pde"]
    unknown = httpx.post(f"{url}/invoke", json={"tool": "nope", "arguments": {}}, timeout=10)
    assert unknown.status_code == 404 and "setup_and_solve" in unknown.json()["error"]
    broken = httpx.post(f"{url}/invoke", content=b"{not json", timeout=10)
    assert broken.status_code == 422


def test_manifest_is_openai_style_and_matches_validation(tool_servers: dict[str, str]) -> None:
    names = set()
    for url in tool_servers.values():
        for spec in httpx.get(f"{url}/manifest", timeout=10).json():
            assert spec["type"] == "function"
            assert spec["function"]["parameters"]["type"] == "object"
            names.add(spec["function"]["name"])
    assert {
        "write_and_run_code",
        "setup_and_solve",
        "global_temperature",
        "simulate_epidemic",
        "single_pendulum_simulation",
        "sphere_collision_simulation",
    } <= names


async def test_client_invokes_and_returns_errors_as_values(tool_servers: dict[str, str]) -> None:
    from workers.tools.client import ToolClient

    client = ToolClient(tool_servers)
    try:
        ok = await client.invoke(
            "simulate_epidemic",
            {
                "model": "SIR",
                "population": 1000,
                "r0": 2,
                "infectious_period_days": 5,
                "initial_infected": 1,
                "days": 200,
                "output": "final_size",
            },
        )
        assert ok.ok and ok.server == "epidemiology" and ok.result["value"] > 700
        bad = await client.invoke("setup_and_solve", {"dimension": "3D"})
        assert bad.status_code == 422 and not bad.ok and "dimension" in (bad.error or "")
        missing = await client.invoke("no_such_tool", {})
        assert missing.status_code == 404 and "setup_and_solve" in (missing.error or "")
    finally:
        await client.aclose()


async def test_client_reports_a_down_server_after_retries() -> None:
    from contract.errors import ToolUnavailableError
    from workers.tools.client import ToolClient

    client = ToolClient({"pde": f"http://127.0.0.1:{free_port()}"}, attempts=3)
    try:
        with pytest.raises(ToolUnavailableError, match="unreachable after 3 attempts"):
            await client.manifest()
    finally:
        await client.aclose()
