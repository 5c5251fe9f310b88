"""`policy_spec`: the tool specs the policy reads are the servers' specs without
validation detail and server knobs, and still name every argument a call needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.tool_specs import SERVER_KNOBS, policy_spec
from tool_servers.climate import CLIMATE_TOOLS
from tool_servers.epidemiology import EPIDEMIOLOGY_TOOLS
from tool_servers.mechanics import mechanics_tools
from tool_servers.pde import pde_tools

SPECS = [t.spec() for t in [*mechanics_tools("awl"), *pde_tools("awl"), *CLIMATE_TOOLS,
                             *EPIDEMIOLOGY_TOOLS]]  # fmt: skip


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


@pytest.mark.parametrize("spec", SPECS, ids=[s["function"]["name"] for s in SPECS])
def test_the_policy_view_keeps_what_a_call_needs(spec: dict[str, Any]) -> None:
    shown = policy_spec(spec)
    full = spec["function"]["parameters"]
    parameters = shown["function"]["parameters"]
    assert shown["function"]["name"] == spec["function"]["name"]
    assert shown["function"]["description"] == spec["function"]["description"]
    assert set(parameters.get("required", [])) == set(full.get("required", []))
    assert set(parameters["properties"]) <= set(full["properties"])
    assert "thought" in parameters["properties"]  # AWL's calls carry it
    assert not SERVER_KNOBS & set(parameters["properties"])
    assert not {"title", "anyOf", "$ref", "$defs", "maximum", "additionalProperties"} & _keys(shown)
    assert len(json.dumps(shown)) < len(json.dumps(spec))


def test_unused_awl_arguments_and_nested_models_are_rendered_plainly() -> None:
    [pendulum] = [s for s in SPECS if s["function"]["name"] == "single_pendulum_simulation"]
    properties = policy_spec(pendulum)["function"]["parameters"]["properties"]
    assert "stiffness" not in properties and "damping" not in properties  # AWL lists, unused
    [epidemic] = EPIDEMIOLOGY_TOOLS
    shown = policy_spec(epidemic.spec())["function"]["parameters"]["properties"]
    window = shown["interventions"]["items"]
    assert window["type"] == "object"
    assert set(window["properties"]) == {"start_day", "end_day", "contact_reduction"}
    assert shown["incubation_period_days"] == {"type": "number"}
