"""Per-request adapter choice on the real vLLM engine (tiny model): an adapter loaded
under a name sits beside the roles' own, a request picks it for a role with
`adapters: {"policy": NAME}`, and a name the worker has not loaded is a 422 naming it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Service
from workers.models.tiny import TinyModel

KEY = {"X-Admin-Key": ADMIN_KEY}


def _load(tiny_model: TinyModel, role: str, source: str, name: str | None = None) -> dict:
    body: dict[str, Any] = {
        "role": role,
        "path": str(tiny_model.adapters[source]),
        "base_model": str(tiny_model.model_dir),
        "rank": 8,
    }
    if name is not None:
        body["name"] = name
    return body


@pytest.fixture()
def named_policy(service: Service, tiny_model: TinyModel) -> Iterator[str]:
    """The truster's weights loaded as `policy-v2`. The asker's slot is lent for the
    test (max_loras keeps one slot free, vLLM CPU LoRA bug) and given back after."""
    with service.client() as client:
        assert client.delete("/admin/adapters/asker", headers=KEY).status_code == 204
        response = client.post(
            "/admin/adapters", json=_load(tiny_model, "policy", "truster", "policy-v2"), headers=KEY
        )
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "policy-v2"
        try:
            yield "policy-v2"
        finally:
            client.delete("/admin/adapters/policy-v2", headers=KEY)
            restored = client.post(
                "/admin/adapters", json=_load(tiny_model, "asker", "asker"), headers=KEY
            )
            assert restored.status_code == 200, restored.text


def _solve(service: Service, adapters: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {
        "problem": "Solve for x: 3x + 5 = 20.",
        "strategy": {"tools": "never"},
        "max_tokens": 16,
        "return_trace": True,
    }
    if adapters is not None:
        body["adapters"] = adapters
    with service.client() as client:
        return client.post("/solve", json=body)


def test_a_request_chooses_which_loaded_adapter_plays_a_role(
    service: Service, named_policy: str
) -> None:
    with service.client() as client:
        listed = {a["name"]: a for a in client.get("/admin/adapters", headers=KEY).json()}
    assert listed[named_policy]["loaded"] and listed[named_policy]["role"] == "policy"
    assert listed["policy"]["loaded"], "the role's own adapter stays beside the named one"

    own, chosen, same_weights = (
        _solve(service, adapters)
        for adapters in (None, {"policy": named_policy}, {"policy": "truster"})
    )
    for response in (own, chosen, same_weights):
        assert response.status_code == 200, response.text
    assert own.json()["trace"][0]["role"] == "policy"
    assert chosen.json()["trace"][0]["role"] == named_policy
    # policy-v2 holds the truster's weights: greedy text equals the truster's, not the policy's.
    assert chosen.json()["answer_text"] == same_weights.json()["answer_text"]
    assert chosen.json()["answer_text"] != own.json()["answer_text"]


def test_an_unknown_adapter_name_is_a_422_naming_it(service: Service) -> None:
    response = _solve(service, {"policy": "policy-v9"})
    assert response.status_code == 422, response.text
    assert "'policy-v9'" in response.json()["detail"]
    assert "POST /admin/adapters" in response.json()["detail"]


@pytest.mark.parametrize(
    ("adapters", "field"),
    [({"critic": "policy"}, "adapters.critic"), ({"policy": "../etc"}, "adapters.policy")],
)
def test_bad_adapter_choices_are_refused_before_queueing(
    service: Service, adapters: dict[str, str], field: str
) -> None:
    response = _solve(service, adapters)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_unloading_an_unknown_name_is_a_clear_422(service: Service) -> None:
    with service.client() as client:
        response = client.delete("/admin/adapters/never-loaded", headers=KEY)
    assert response.status_code == 422
    assert "'never-loaded'" in response.json()["detail"]


def test_base_chooses_the_base_model_for_a_role(service: Service, tiny_model: TinyModel) -> None:
    """`{"policy": "base"}` runs the base model with the policy adapter still loaded: the
    same greedy text as with the policy adapter unloaded, and not the adapter's."""
    with service.client() as client:
        assert client.delete("/admin/adapters/policy", headers=KEY).status_code == 204
        try:
            unloaded = _solve(service)
        finally:
            restored = client.post(
                "/admin/adapters", json=_load(tiny_model, "policy", "policy"), headers=KEY
            )
            assert restored.status_code == 200, restored.text
    own, base = _solve(service), _solve(service, {"policy": "base"})
    for response in (unloaded, own, base):
        assert response.status_code == 200, response.text
    assert base.json()["trace"][0]["role"] == "base"
    assert base.json()["answer_text"] == unloaded.json()["answer_text"]
    assert base.json()["answer_text"] != own.json()["answer_text"]


def test_base_is_a_reserved_adapter_name(service: Service, tiny_model: TinyModel) -> None:
    with service.client() as client:
        response = client.post(
            "/admin/adapters", json=_load(tiny_model, "policy", "asker", "base"), headers=KEY
        )
    assert response.status_code == 422, response.text
    assert "reserved" in response.text
