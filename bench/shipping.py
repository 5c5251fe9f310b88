"""What a trained role needs to ship: its loss curve, and its copy in
`adapters/shipped/<demo model>/<role>` with a model card and the registry entry that
the embedded default serves (`adapters.registry.shipped_registry`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from adapters.registry import REGISTRY_FILE, SHIPPED


def loss_plot(adapter: Path, out: Path) -> Path:
    """The training loss by optimizer step (the adapter folder's loss.jsonl) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [json.loads(x) for x in (adapter / "loss.jsonl").read_text().splitlines() if x]
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=120)
    axes.plot([x["step"] for x in lines], [x["loss"] for x in lines], "-o", markersize=2)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out


def training_card(
    figures: dict[str, Any], *, batch_size: int, learning_rate: float, seed: int
) -> dict[str, Any]:
    """How an adapter was trained, as every role's model card states it."""
    return {
        "steps": figures["steps"],
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "rank": figures["rank"],
        "targets": figures["targets"],
        "training_seconds": round(figures["seconds"]),
        "loss": [figures["first_loss"], figures["last_loss"]],
    }


def ship_adapter(
    adapter: Path, role: str, demo_model: str, card: dict[str, Any], root: Path = SHIPPED
) -> Path:
    """Copy the weights and config (the base named by the demo model's name, not this
    machine's cache path), write `card.json`, and add the role to the registry."""
    folder = root / demo_model
    target = folder / role
    target.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        shutil.copy2(adapter / name, target / name)
    config = json.loads((target / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = demo_model
    rank = int(config["r"])
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (target / "card.json").write_text(
        json.dumps({"role": role, "base_model": demo_model, **card}, indent=2) + "\n"
    )
    registry_file = folder / REGISTRY_FILE
    registry = yaml.safe_load(registry_file.read_text()) if registry_file.is_file() else None
    registry = registry or {"adapters": {}}
    registry["adapters"][role] = {"path": role, "base_model": demo_model, "rank": rank}
    registry_file.write_text(yaml.safe_dump(registry, sort_keys=True))
    return target
