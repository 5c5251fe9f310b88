"""Broken adapter registries fail clearly at start-up and through the admin endpoint;
good adapters load and unload at runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.registry import load_registry
from contract.errors import AdapterError
from entrypoints.embedded import create_embedded_app
from tests.conftest import ADMIN_KEY, Service, tiny_settings
from workers.engines.base import GenerationRequest, Sampling
from workers.models.tiny import TinyModel


def _write(registry: Path, **entry: object) -> Path:
    registry.write_text(json.dumps({"adapters": {"policy": entry}}))
    return registry


@pytest.fixture()
def broken_registries(tiny_model: TinyModel, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    policy = str(tiny_model.adapters["policy"])
    base = str(tiny_model.model_dir)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(policy, no_weights)
    (no_weights / "adapter_model.safetensors").unlink()
    cases = {
        "rank too large": (dict(path=policy, base_model=base, rank=8), "max_lora_rank"),
        "base mismatch": (
            dict(path=policy, base_model="Qwen/Qwen2.5-7B", rank=8),
            "trained on base model",
        ),
        "missing folder": (
            dict(path=str(tmp_path / "nope"), base_model=base, rank=8),
            "does not exist",
        ),
        "missing weights": (dict(path=str(no_weights), base_model=base, rank=8), "no weights"),
        "rank disagrees": (dict(path=policy, base_model=base, rank=4), "r=8"),
    }
    out = {}
    for name, (entry, message) in cases.items():
        out[name] = (_write(tmp_path / f"{name.replace(' ', '-')}.yaml", **entry), message)
    return out


CASES = ["rank too large", "base mismatch", "missing folder", "missing weights", "rank disagrees"]


@pytest.mark.parametrize("case", CASES)
def test_broken_registry_is_refused_by_the_loader(tiny_model, broken_registries, case) -> None:
    registry, message = broken_registries[case]
    max_rank = 4 if case == "rank too large" else 16
    with pytest.raises(AdapterError, match=message):
        load_registry(registry, served_model=str(tiny_model.model_dir), max_lora_rank=max_rank)


@pytest.mark.parametrize("case", CASES)
def test_broken_registry_stops_start_up(tiny_model, broken_registries, case) -> None:
    """The app's lifespan refuses to start; no half-working server comes up."""
    registry, message = broken_registries[case]
    settings = tiny_settings(
        tiny_model, adapter_registry=registry, max_lora_rank=4 if case == "rank too large" else 16
    )
    with pytest.raises(AdapterError, match=message), TestClient(create_embedded_app(settings)):
        pass


def test_registry_file_errors_are_clear(tiny_model, tmp_path) -> None:
    served = str(tiny_model.model_dir)
    with pytest.raises(AdapterError, match="does not exist"):
        load_registry(tmp_path / "none.yaml", served_model=served, max_lora_rank=16)
    (tmp_path / "bad.yaml").write_text("adapters: [1, 2")
    with pytest.raises(AdapterError, match="not valid YAML"):
        load_registry(tmp_path / "bad.yaml", served_model=served, max_lora_rank=16)
    (tmp_path / "empty.yaml").write_text("{}")
    with pytest.raises(AdapterError, match="mapping under 'adapters'"):
        load_registry(tmp_path / "empty.yaml", served_model=served, max_lora_rank=16)


def _admin_body(tiny_model: TinyModel, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "role": "truster",
        "path": str(tiny_model.adapters["truster"]),
        "base_model": str(tiny_model.model_dir),
        "rank": 8,
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_model": "Qwen/Qwen2.5-7B"}, "trained on base model"),
        ({"path": "/nonexistent/adapter"}, "does not exist"),
        ({"rank": 32}, "r=8"),
        ({"role": "critic"}, "body.role"),
        ({"path": "~no-such-user-here/adapter"}, "cannot expand '~no-such-user-here'"),
        ({"path": "adapter\x00"}, "NUL byte"),
        ({"base_model": "~no-such-user-here/other-model"}, "trained on base model"),
    ],
)
def test_admin_refuses_broken_adapters(service: Service, tiny_model, overrides, message) -> None:
    with service.client() as client:
        response = client.post(
            "/admin/adapters",
            json=_admin_body(tiny_model, **overrides),
            headers={"X-Admin-Key": ADMIN_KEY},
        )
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
        assert client.get("/readyz").status_code == 200


def test_admin_refuses_rank_above_the_engine_limit(service: Service, tiny_model, tmp_path) -> None:
    big = tmp_path / "big"
    shutil.copytree(tiny_model.adapters["truster"], big)
    config = json.loads((big / "adapter_config.json").read_text())
    config["r"] = 64
    (big / "adapter_config.json").write_text(json.dumps(config))
    with service.client() as client:
        response = client.post(
            "/admin/adapters",
            headers={"X-Admin-Key": ADMIN_KEY},
            json=_admin_body(tiny_model, path=str(big), rank=64),
        )
    assert response.status_code == 422
    assert "max_lora_rank=16" in response.json()["detail"]


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"X-Admin-Key": "wrong"}, 403)])
def test_admin_needs_the_right_key(service: Service, tiny_model, headers, status) -> None:
    with service.client() as client:
        assert client.get("/admin/adapters", headers=headers).status_code == status
        response = client.post("/admin/adapters", json=_admin_body(tiny_model), headers=headers)
        assert response.status_code == status
        assert "admin key" in response.json()["detail"]


def test_admin_unload_and_reload_changes_what_the_role_runs(service: Service, tiny_model) -> None:
    """Unloading a role makes it fall back to the base model; reloading restores it."""
    key = {"X-Admin-Key": ADMIN_KEY}

    def tokens(role: str | None) -> list[int]:
        request = GenerationRequest(
            prompt="Solve 3x + 5 = 20.", role=role, sampling=Sampling(max_tokens=12)
        )
        return service.call(service.engine.generate([request]))[0].token_ids[0]

    with_adapter, base = tokens("truster"), tokens(None)
    assert with_adapter != base
    with service.client() as client:
        assert client.delete("/admin/adapters/truster", headers=key).status_code == 204
        listed = {a["role"]: a for a in client.get("/admin/adapters", headers=key).json()}
        assert listed["truster"]["loaded"] is False
        assert 'sciserve_adapter_loaded{role="truster"} 0.0' in client.get("/metrics").text
        assert tokens("truster") == base
        response = client.post("/admin/adapters", json=_admin_body(tiny_model), headers=key)
        assert response.status_code == 200, response.text
        assert 'sciserve_adapter_loaded{role="truster"} 1.0' in client.get("/metrics").text
    assert tokens("truster") == with_adapter


def test_the_demo_model_serves_its_shipped_adapters_unless_told_otherwise(
    tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shipped registry validates against a folder named like its demo model (a
    prepared copy), and the factory picks it only when no registry or model is set."""
    from adapters.registry import SHIPPED, shipped_registry
    from contract.settings import Settings
    from workers.engines.factory import adapter_registry

    for folder in sorted(p for p in SHIPPED.iterdir() if p.is_dir()) if SHIPPED.is_dir() else []:
        registry = shipped_registry(folder.name)
        assert registry is not None, folder
        served = tmp_path / folder.name  # the prepared model's folder name
        specs = load_registry(registry, served_model=str(served), max_lora_rank=16)
        assert specs and all(spec.path.is_relative_to(folder) for spec in specs.values())
    # The selection rule, on a shipped folder of our own: the factory's lookup is pointed
    # at it (the one stand-in here), so the rule is tested whatever the repository ships.
    root = tmp_path / "shipped"
    (root / "qwen2.5-coder-0.5b").mkdir(parents=True)
    (root / "qwen2.5-coder-0.5b" / "registry.yaml").write_text("adapters: {}\n")
    monkeypatch.setattr(
        "workers.engines.factory.shipped_registry",
        lambda name: shipped_registry(name, root),
    )
    demo = Settings(demo_model="qwen2.5-coder-0.5b")
    assert adapter_registry(demo) == root / "qwen2.5-coder-0.5b" / "registry.yaml"
    assert adapter_registry(Settings(demo_model="qwen2.5-coder-1.5b")) is None
    assert adapter_registry(demo.model_copy(update={"shipped_adapters": False})) is None
    assert adapter_registry(demo.model_copy(update={"model": str(tiny_model.model_dir)})) is None
    assert adapter_registry(demo.model_copy(update={"adapter_registry": tiny_model.registry})) == (
        tiny_model.registry
    )


def test_a_policy_trained_on_awls_layout_makes_it_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served policy adapter's card names the layout it was trained on, and for
    which domains; serving it makes that layout the default there (a card without
    domains: everywhere), and SCISERVE_PROMPT_STYLE still wins."""
    from adapters.registry import TrainedLayout, shipped_registry, trained_layout
    from contract.schemas import SolveRequest
    from contract.settings import Settings
    from workers.engines.factory import ServedLayout, served_layout
    from workers.pipeline import PipelineOptions

    root = tmp_path / "shipped"
    folder = root / "qwen2.5-coder-0.5b"
    (folder / "policy").mkdir(parents=True)
    (folder / "registry.yaml").write_text("adapters: {}\n")
    card = folder / "policy" / "card.json"
    monkeypatch.setattr(
        "workers.engines.factory.shipped_registry", lambda name: shipped_registry(name, root)
    )
    monkeypatch.delenv("SCISERVE_PROMPT_STYLE", raising=False)
    demo = Settings(demo_model="qwen2.5-coder-0.5b")
    assert trained_layout(folder / "registry.yaml") is None  # no card: nothing said
    assert served_layout(demo) == ServedLayout("sciserve")
    card.write_text(json.dumps({"prompt_style": "awl"}))
    assert trained_layout(folder / "registry.yaml") == TrainedLayout("awl")
    assert served_layout(demo) == ServedLayout("awl")
    assert PipelineOptions.from_settings(demo).prompt_style == "awl"
    assert served_layout(demo.model_copy(update={"shipped_adapters": False})).default == "sciserve"

    science = ["pde", "mechanics", "climate", "epidemiology"]
    card.write_text(json.dumps({"prompt_style": "awl", "prompt_domains": science}))
    options = PipelineOptions.from_settings(demo)
    assert (options.prompt_style, options.awl_domains) == ("sciserve", frozenset(science))

    def style(problem: str, **strategy: object) -> str:
        request = SolveRequest(problem=problem, strategy=strategy)  # type: ignore[arg-type]
        return options.prompt_style_for(request)

    climate = "Under SSP2-4.5, what global warming does the climate model give for 2060?"
    assert style(climate) == "awl"  # two climate words: read from the question
    assert style("What is 15% of 80?") == "sciserve"  # math keeps the untrained layout
    shop = "A box of 12 pencils costs $3. What do 5 boxes cost?"  # one mechanics word
    assert style(shop) == "sciserve"
    assert style("What is 15% of 80?", domain="climate") == "awl"  # a named domain wins
    assert style(climate, prompt_style="sciserve") == "sciserve"  # the request's wins

    monkeypatch.setenv("SCISERVE_PROMPT_STYLE", "sciserve")  # the operator's choice wins
    assert served_layout(Settings(demo_model="qwen2.5-coder-0.5b")) == ServedLayout("sciserve")
