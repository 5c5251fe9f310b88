"""Which adapters a job runs on, by engine name: what a pool worker whose load failed
checks before leaving the job to a peer (workers/adapter_sync.py)."""

from __future__ import annotations

from typing import Any

import pytest

from contract.schemas import SolveRequest


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({}, {"policy"}),
        ({"strategy": {"art": True}}, {"policy", "asker", "truster"}),
        ({"adapters": {"policy": "policy-v2"}}, {"policy-v2"}),
        ({"adapters": {"asker": "asker-v2"}}, {"policy"}),  # no ART: the Asker never runs
        ({"strategy": {"art": True}, "adapters": {"truster": "t2"}}, {"policy", "asker", "t2"}),
        ({"adapters": {"policy": "base"}}, set()),  # the base model needs no adapter
    ],
)
def test_adapter_names_are_the_roles_the_strategy_runs(
    fields: dict[str, Any], names: set[str]
) -> None:
    assert SolveRequest(problem="2 + 2?", **fields).adapter_names() == names
