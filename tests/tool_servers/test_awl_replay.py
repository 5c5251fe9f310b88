"""AWL compatibility of the tool servers, over real HTTP: every AWL tool answers a
call exactly as AWL's agent emits it (a JSON line with `thought`, parsed the way
AWL's `parse_function_call` does), `numerics: "awl"` reproduces AWL's own worked
examples digit for digit, and each manifest shows one AWL-named schema per tool.

Expected values come from AWL's code and prompts (Rose-STL-Lab/Adapting-While-
Learning: src/PDE/answer_agent.py system prompt examples, test_set/mujoco.json)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from contract.settings import Settings
from tool_servers.registry import build_tool_server

THOUGHT = '"thought": "I should simulate this to read the value."'

# One line per AWL tool, as AWL's agent writes it (keys and typos are AWL's).
AWL_LINES = {
    "mechanics": [
        '{"name": "ball_simulation", "parameters": {' + THOUGHT + ', "stiffness": 1000, '
        '"damping": 0.37, "gra_acel": -9.03, "x": -0.25, "y": -4.0, "z": 0.03, "r": 0.17, '
        '"mass": 0.16, "simend": 1, "x_v": -2.23, "y_v": 1.92, "z_v": 3.67, '
        '"sliding_fric": 0.3, "torsional_fric": 0.77, "rolling_fric": 0.26}}',
        '{"name": "ball_plane_simulation", "parameters": {' + THOUGHT + ', "stiffness": 100, '
        '"damping": 0.91, "gra_acel": -9.47, "x": 3.58, "y": -3.32, "z": 0.23, "r": 0.11, '
        '"mass": 0.29, "simend": 1, "x_v": 0.42, "y_v": -1.19, "z_v": -1.93, '
        '"sliding_fric": 0.33, "torsional_fric": 0.72, "rolling_fric": 0.8}}',
        '{"name": "box_plane_simulation", "parameters": {' + THOUGHT + ', "damping": 0.03, '
        '"gra_acel": -9.24, "x": -0.8, "y": -0.62, "z": 0.33, "r": 0.48, "mass": 3.47, '
        '"simend": 1, "x_v": 1.99, "y_v": 1.68, "z_v": -2.16}}',
        '{"name": "roll_ball_simulation", "parameters": {' + THOUGHT + ', "damping": 0.76, '
        '"gra_acel": -9.75, "x": 0.39, "y": -0.56, "z": 0.62, "r": 0.19, "mass": 1.94, '
        '"simend": 1, "x_v": 0.75, "y_anv": 4.45, "z_v": 0.31, "sliding_fric": 0.18, '
        '"torsional_fric": 0.57, "rolling_fric": 0.16}}',
        '{"name": "sphere_collision_simulation", "parameters": {' + THOUGHT + ", "
        '"timeconst": 0.05, "dampratio": 0.95, "gra_acel": -9.3, "x1": -0.07, "y1": 0.29, '
        '"z1": 0.4, "r1": 0.17, "mass1": 0.66, "x2": -0.08, "y2": 0.71, "z2": -0.04, '
        '"r2": 0.17, "mass2": 0.57, "simend": 1, "x1_v": -6.14, "y1_v": -2.11, '
        '"z1_v": -7.13, "x2_v": -6.19, "y2_v": 2.15, "z2_v": -8.09}}',
        '{"name": "ball_game_simulation", "parameters": {' + THOUGHT + ', "damping": 0.68, '
        '"gra_acel": -9.38, "mass_ball": 0.55, "mass_post": 8.7, "mass_box": 0.88, '
        '"simend": 1, "post_hight": 3.62, "x_v": 15.71, "y_v": 16.04, "z_v": 17.08}}',
        '{"name": "single_pendulum_simulation", "parameters": {' + THOUGHT + ", "
        '"stiffness": 100, "damping": 1, "gra_acel": -9.98, "mass_capsule": 0.18, '
        '"mass_ball": 0.17, "sliding_fric": 0.17, "torsional_fric": 0.69, '
        '"rolling_fric": 0.6, "simend": 1, "initial_angle": 0.36, '
        '"initial_angular_velocity": -0.44}}',
        '{"name": "double_pendulum_simulation", "parameters": {' + THOUGHT + ", "
        '"stiffness": 100, "damping": 1, "gra_acel": -9.71, "mass_capsule_1": 0.12, '
        '"mass_ball_1": 0.19, "mass_capsule_2": 0.08, "mass_ball_2": 0.13, '
        '"sliding_fric": 0.12, "torsional_fric": 0.52, "rolling_fric": 0.12, "simend": 1, '
        '"initial_angle_1": 2.62, "initial_angular_velocity_1": 0.22, '
        '"initial_angle_2": 0.24, "initial_angular_velocity_2": -0.7}}',
        '{"name": "diff_vehicle_simulation", "parameters": {' + THOUGHT + ", "
        '"stiffness": 100, "damping": 1, "gra_acel": -9.7, "simend": 1, "left_vel": -0.92, '
        '"right_vel": 2.65, "sliding_fric": 0.51, "torsional_fric": 0.46, '
        '"rolling_fric": 0.7}}',
    ],
    # AWL's PDE examples send `parameters` as a JSON string in single quotes
    "pde": [
        "{'name': 'setup_and_solve', 'parameters': '{\"dimension\":\"1D\",\"D\":0.18,"
        '"T":241,"L":93,"ic_type":"constant","ic_params":{"value":15},'
        '"bc_type":"dirichlet","bc_params":{"left_value":33,"right_value":87},'
        '"solution_type":"get_value_at_point","solution_x":36}\'}',
    ],
}


def parse_like_awl(line: str) -> tuple[str, dict[str, Any]]:
    """AWL's parse_function_call (src/PDE/answer_agent.py): quotes to double quotes,
    first `;`-part, first line, json.loads."""
    call = json.loads(line.replace("'", '"').split(";")[0].split("\n")[0])
    return call["name"], call["parameters"]


def _awl_pde_line() -> tuple[str, dict[str, Any]]:
    """AWL's PDE examples quote `parameters` as a string; its agent json.loads it."""
    line = AWL_LINES["pde"][0]
    name = line.split("'name': '")[1].split("'")[0]
    parameters = json.loads(line.split("'parameters': '")[1].rsplit("'", 1)[0])
    return name, parameters


@pytest.mark.parametrize("line", AWL_LINES["mechanics"], ids=lambda s: s.split('"')[3])
def test_awl_mechanics_call_is_accepted_and_answered(
    tool_servers: dict[str, str], line: str
) -> None:
    name, parameters = parse_like_awl(line)
    assert "thought" in parameters
    response = httpx.post(
        f"{tool_servers['mechanics']}/invoke",
        json={"tool": name, "arguments": parameters},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    first = result["text"].splitlines()[0]
    assert first.startswith("Time: 0.0 s, "), first
    assert result["awl"] and result["numerics"] == "converged"


def test_awl_pde_call_is_accepted_and_answered(tool_servers: dict[str, str]) -> None:
    name, parameters = _awl_pde_line()
    response = httpx.post(
        f"{tool_servers['pde']}/invoke",
        json={"tool": name, "arguments": {**parameters, "thought": "solve it"}},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    text = response.json()["result"]["text"]
    assert text.startswith("Simulation Result:\n[") and "\nThe result for solution: " in text


# AWL's own worked examples (the PDE system prompt of src/PDE/answer_agent.py)
AWL_PDE_EXAMPLES = [
    (
        {"dimension": "1D", "D": 0.18, "T": 241, "L": 93, "ic_type": "constant",
         "ic_params": {"value": 15}, "bc_type": "dirichlet",
         "bc_params": {"left_value": 33, "right_value": 87},
         "solution_type": "get_value_at_point", "solution_x": 36},
        "15.065160821102706",
        "[33.         20.1129984  15.8995674  15.11285897 15.0142828  15.04435316\n",
    ),
    (
        {"dimension": "1D", "D": 0.0006, "T": 686, "L": 3.0, "ic_type": "step",
         "ic_params": '{"left_value":8.0,"right_value":74.0}', "bc_type": "dirichlet",
         "bc_params": {"left_value": 53.0, "right_value": 93.0},
         "solution_type": "get_min_value"},
        "39.46174977174152",
        "[53.         45.02834872 39.92147009 39.46174977 43.82646755 51.84663884\n",
    ),
    (
        {"dimension": "2D", "D": 0.44, "T": 7.0, "Lx": 72.0, "Ly": 5.0,
         "ic_type": "checkerboard",
         "ic_params": {"value1": 100, "value2": 0, "cell_size_x": 36.0, "cell_size_y": 2.5},
         "bc_type": "dirichlet",
         "bc_params": {"left_value": 40, "right_value": 55, "bottom_value": 10, "top_value": 97},
         "solution_type": "get_max_gradient"},
        "114.0",
        "[[40.         10.         10.         10.         10.         10.\n",
    ),
    (
        {"dimension": "2D", "D": 0.0004, "T": 676, "Lx": 1.0, "Ly": 8.0,
         "ic_type": "checkerboard",
         "ic_params": {"value1": 100, "value2": 0, "cell_size_x": 0.5, "cell_size_y": 0.5},
         "bc_type": "dirichlet",
         "bc_params": {"left_value": 4, "right_value": 68, "bottom_value": 89, "top_value": 9},
         "solution_type": "get_max_gradient"},
        "744.46",
        " [ 4.         14.55445798 23.95956822 32.36340214 39.89225251 46.65749582\n",
    ),
    (
        {"dimension": "1D", "D": 0.0006, "T": 745, "L": 9, "ic_type": "step",
         "ic_params": {"left_value": 76, "right_value": 13}, "bc_type": "dirichlet",
         "bc_params": {"left_value": 74, "right_value": 92},
         "solution_type": "get_max_gradient"},
        "61.12",
        "[74.         75.34568137 75.43401404 72.78700428 60.09755649 28.97226214\n",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("arguments", "answer", "field_line"), AWL_PDE_EXAMPLES)
def test_awl_numerics_reproduce_awl_pde_examples(
    tool_servers: dict[str, str], arguments: dict[str, Any], answer: str, field_line: str
) -> None:
    response = httpx.post(
        f"{tool_servers['pde']}/invoke",
        json={"tool": "setup_and_solve", "arguments": {**arguments, "numerics": "awl"}},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["text"].endswith(f"\nThe result for solution: {answer}")
    assert field_line in result["text"]
    assert result["numerics"] == "awl" and result["value"] == pytest.approx(float(answer))


def test_awl_numerics_reproduce_an_awl_mujoco_answer_and_its_step_rule(
    tool_servers: dict[str, str],
) -> None:
    """mujoco.json item 0 (sphere collision, correct -1.91). AWL runs simend·1000+1
    steps whatever dt, so at dt=1e-4 it simulates 0.3001 s of a '3 s' run."""
    _, parameters = parse_like_awl(AWL_LINES["mechanics"][4])
    url = f"{tool_servers['mechanics']}/invoke"
    arguments = {**parameters, "simend": 3}
    awl = httpx.post(
        url,
        json={"tool": "sphere_collision_simulation", "arguments": {**arguments, "numerics": "awl"}},
        timeout=120,
    ).json()["result"]
    assert awl["awl"]["sphere1"]["position"]["x"][-1] == -1.91
    assert awl["steps"] == 3001 and awl["time"] == pytest.approx(0.3001)
    assert awl["text"].splitlines()[-2].startswith("Time: 3.0 s, Sphere1 Pos: x: -1.91 ")
    converged = httpx.post(
        url, json={"tool": "sphere_collision_simulation", "arguments": arguments}, timeout=120
    ).json()["result"]
    assert converged["steps"] == 30000 and converged["time"] == pytest.approx(3.0)


def test_every_tool_takes_thought_and_manifests_show_awl_names(
    tool_servers: dict[str, str],
) -> None:
    specs = {}
    for url in tool_servers.values():
        for spec in httpx.get(f"{url}/manifest", timeout=10).json():
            specs[spec["function"]["name"]] = spec["function"]["parameters"]["properties"]
    assert all("thought" in properties for properties in specs.values()), specs.keys()
    assert {"x", "y", "z", "r", "x_v", "y_v", "z_v"} <= set(specs["ball_plane_simulation"])
    assert "initial_position" not in specs["ball_plane_simulation"]
    assert "y_anv" in specs["roll_ball_simulation"]
    assert "post_hight" in specs["ball_game_simulation"]
    assert {"solution_x", "solution_y", "numerics"} <= set(specs["setup_and_solve"])
    climate = httpx.post(
        f"{tool_servers['climate']}/invoke",
        json={
            "tool": "global_temperature",
            "arguments": {"thought": "t", "scenario": "ssp245", "start_year": 2030,
                          "end_year": 2040},
        },
        timeout=60,
    )  # fmt: skip
    assert climate.status_code == 200, climate.text


def test_server_default_numerics_comes_from_settings() -> None:
    """In-process (TestClient): the registry hands SCISERVE_TOOL_NUMERICS to the
    server; a call's own `numerics` still wins."""
    server = build_tool_server("pde", Settings(tool_numerics="awl"))
    arguments = AWL_PDE_EXAMPLES[0][0]
    with TestClient(server.app) as client:
        default = client.post(
            "/invoke", json={"tool": "setup_and_solve", "arguments": arguments}
        ).json()["result"]
        own = client.post(
            "/invoke",
            json={"tool": "setup_and_solve", "arguments": {**arguments, "numerics": "converged"}},
        ).json()["result"]
    assert default["numerics"] == "awl" and default["value"] == pytest.approx(15.065160821102706)
    assert own["numerics"] == "converged" and own["converged"] is True
