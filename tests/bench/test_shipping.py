"""Shipping a trained role: the copy the embedded default serves must load as the
registry validates it, name no path of the machine it was trained on, and carry the
card the service reads its layout from."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.registry import TrainedLayout, load_registry, shipped_registry, trained_layout
from bench.shipping import ship_adapter, training_card
from workers.models.tiny import TinyModel


def test_a_shipped_policy_loads_from_its_registry_with_its_card(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    root = tmp_path / "shipped"
    figures = {"steps": 3, "rank": tiny_model.rank, "targets": "q_proj", "seconds": 12.4,
               "first_loss": 0.8, "last_loss": 0.1}  # fmt: skip
    card = {"prompt_style": "awl", **training_card(figures, batch_size=2, learning_rate=3e-4,
                                                   seed=0)}  # fmt: skip
    target = ship_adapter(tiny_model.adapters["policy"], "policy", "tiny-demo", card, root=root)
    ship_adapter(tiny_model.adapters["truster"], "truster", "tiny-demo", {}, root=root)
    registry = shipped_registry("tiny-demo", root)
    assert registry is not None
    served = tmp_path / "tiny-demo"  # a prepared copy is named like its demo model
    specs = load_registry(registry, served_model=str(served), max_lora_rank=16)
    assert set(specs) == {"policy", "truster"}  # the second role joins, the first stays
    assert specs["policy"].path == target and specs["policy"].rank == tiny_model.rank
    config = json.loads((target / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-demo"  # not this machine's path
    written = json.loads((target / "card.json").read_text())
    assert written["role"] == "policy" and written["training_seconds"] == 12
    assert written["loss"] == [0.8, 0.1]
    assert trained_layout(registry) == TrainedLayout("awl")
