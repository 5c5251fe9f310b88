"""Model names of the OpenAI-compatible API: the served base model and the strategy
presets, so a client that can only set `model` still picks a strategy.

- `<base>`: the /solve default strategy (adaptive: AWL's tool decision);
- `sciserve-<preset>`: a preset (`sciserve-vote5`);
- `<base>:<preset>`: the same preset, named with the base (`qwen2.5-coder-1.5b:think`).

The presets are `contract/presets.py`'s, the same list `sciserve eval -s` accepts.
"""

from __future__ import annotations

from pathlib import Path

from contract.errors import SciserveError
from contract.presets import STRATEGY_PRESETS, preset_fields
from contract.schemas import Strategy
from contract.settings import Settings

PRESET_PREFIX = "sciserve-"


class UnknownModelError(SciserveError):
    """A model name that is neither the base model nor a preset (OpenAI: 404)."""

    status_code = 404


def base_model_name(settings: Settings) -> str:
    """The served model's name: the model folder's name, or the demo model's."""
    return Path(settings.model).name if settings.model else settings.demo_model


def model_names(settings: Settings) -> list[tuple[str, Strategy, str]]:
    """Every model name `/v1/models` lists, with its strategy and description."""
    base = base_model_name(settings)
    names = [(base, Strategy(), "The base model with the default strategy (adaptive).")]
    for preset, (_, description) in STRATEGY_PRESETS.items():
        names.append((f"{PRESET_PREFIX}{preset}", Strategy(**preset_fields(preset)), description))
    for preset, (_, description) in STRATEGY_PRESETS.items():
        names.append((f"{base}:{preset}", Strategy(**preset_fields(preset)), description))
    return names


def strategy_for(model: str, settings: Settings) -> Strategy:
    """The strategy a model name stands for; an unknown name is a 404 that lists the
    names served."""
    for name, strategy, _ in model_names(settings):
        if name == model:
            return strategy
    base = base_model_name(settings)
    presets = ", ".join(STRATEGY_PRESETS)
    raise UnknownModelError(
        f"The model {model!r} does not exist here. Use {base!r}, "
        f"'{PRESET_PREFIX}<preset>' or '{base}:<preset>' with a preset of: {presets} "
        "(GET /v1/models lists them)."
    )
