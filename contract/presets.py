"""Strategy presets by name: the one list the OpenAI-compatible API serves as model
names (`sciserve-<preset>`) and `sciserve eval -s <preset>` accepts.

Each preset names only what it adds to a direct answer (`PRESET_BASE`), so presets
combine in any order (`adaptive,plan`, `think,vote5`).
"""

from __future__ import annotations

from typing import Any

PRESET_BASE: dict[str, Any] = {"tools": "never"}
# preset → (strategy fields over PRESET_BASE, what it does)
STRATEGY_PRESETS: dict[str, tuple[dict[str, Any], str]] = {
    "direct": ({}, "One greedy answer with AWL's no-tool prompt."),
    "vote5": ({"samples": 5}, "Five samples (one greedy), then a majority vote."),
    "score": ({"attempts": 2}, "One SCoRe self-correction round."),
    "art": ({"art": True}, "ART: the Asker decides, the Truster picks."),
    "think": ({"think": True}, "TPO: hidden thoughts, then the response."),
    "plan": ({"plan": True}, "PEARL: a plan over a fixed action set, each step, the answer."),
    "adaptive": ({"tools": "auto"}, "AWL: the scientific tools or a direct answer."),
    "auto": (
        {"auto": True},
        "The greedy answer when it is confident, else an early-stopped vote of five.",
    ),
}


def preset_fields(name: str) -> dict[str, Any]:
    """The whole strategy a preset stands for (KeyError for an unknown name)."""
    return {**PRESET_BASE, **STRATEGY_PRESETS[name][0]}
