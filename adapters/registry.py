"""The adapter registry: a YAML/JSON file that maps each role to an adapter folder.

The file looks like::

    adapters:
      policy:  {path: ./policy, base_model: Qwen/Qwen2.5-Coder-1.5B-Instruct, rank: 16}
      asker:   {path: ./asker,  base_model: Qwen/Qwen2.5-Coder-1.5B-Instruct, rank: 8}

Relative paths resolve against the registry file's folder. Validation happens here,
before any engine sees an adapter, so a broken registry fails at start-up (and at the
admin endpoint) with a sentence that says what to fix, not deep inside vLLM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from contract.errors import AdapterError

Role = Literal["policy", "asker", "truster"]
ROLES: tuple[str, ...] = get_args(Role)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# Adapters trained for a demo model and committed with the code: one folder per demo
# model, its registry.yaml naming the roles it trained (paths relative to it).
SHIPPED = Path(__file__).resolve().parent / "shipped"
REGISTRY_FILE = "registry.yaml"


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter, after validation. Engines key adapters by `name`; a role's own
    adapter is named after the role, so requests that name no adapter get it. Other
    names (`policy-v2`) sit beside it, for requests that choose them (`adapters`)."""

    role: str
    path: Path
    base_model: str
    rank: int
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.role)


def same_base_model(declared: str, served: str) -> bool:
    """Whether an adapter's declared base is the served model.

    Paths compare resolved; hub-style names compare case-insensitively and also match a
    served folder of the same final name (a prepared copy of that model).
    """
    if declared == served:
        return True
    try:
        declared_path, served_path = Path(declared).expanduser(), Path(served).expanduser()
        if declared_path.exists() and served_path.exists():
            return declared_path.resolve() == served_path.resolve()
    except (RuntimeError, OSError):  # `~user` unknown here, or an unreadable path
        pass  # not comparable as paths: compare as names
    declared_name = declared.rstrip("/").rsplit("/", 1)[-1].lower()
    served_name = served.rstrip("/").rsplit("/", 1)[-1].lower()
    return declared_name == served_name


def validate_adapter(
    role: str,
    path: Path,
    base_model: str,
    rank: int,
    *,
    served_model: str,
    max_lora_rank: int,
    name: str | None = None,
) -> AdapterSpec:
    """Check one adapter against the served model and the engine's LoRA limits."""
    if role not in ROLES:
        raise AdapterError(f"Unknown adapter role {role!r}; roles are {', '.join(ROLES)}.")
    if not path.is_dir():
        raise AdapterError(f"Adapter for role {role!r}: folder {path} does not exist.")
    config_file = path / ADAPTER_CONFIG
    if not config_file.is_file():
        raise AdapterError(f"Adapter for role {role!r}: {config_file} is missing.")
    if not any((path / name).is_file() for name in ADAPTER_WEIGHTS):
        raise AdapterError(
            f"Adapter for role {role!r}: no weights in {path} "
            f"(expected one of {', '.join(ADAPTER_WEIGHTS)})."
        )
    if not same_base_model(base_model, served_model):
        raise AdapterError(
            f"Adapter for role {role!r} was trained on base model {base_model!r}, "
            f"but this service serves {served_model!r}."
        )
    try:
        file_rank = int(json.loads(config_file.read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterError(
            f"Adapter for role {role!r}: {config_file} has no valid rank 'r'."
        ) from exc
    if file_rank != rank:
        raise AdapterError(
            f"Adapter for role {role!r}: the registry says rank {rank}, "
            f"but {config_file} says r={file_rank}."
        )
    if rank > max_lora_rank:
        raise AdapterError(
            f"Adapter for role {role!r} has rank {rank}, above max_lora_rank={max_lora_rank}; "
            "raise SCISERVE_MAX_LORA_RANK or use a smaller adapter."
        )
    return AdapterSpec(
        role=role, path=path.resolve(), base_model=base_model, rank=rank, name=name or role
    )


def load_registry(file: Path, *, served_model: str, max_lora_rank: int) -> dict[str, AdapterSpec]:
    """Read and validate a registry file; every problem is an `AdapterError`."""
    if not file.is_file():
        raise AdapterError(f"Adapter registry {file} does not exist.")
    try:
        raw: Any = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise AdapterError(f"Adapter registry {file} is not valid YAML/JSON: {exc}") from exc
    entries = raw.get("adapters") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise AdapterError(f"Adapter registry {file} needs a mapping under 'adapters'.")
    specs: dict[str, AdapterSpec] = {}
    for role, entry in entries.items():
        if not isinstance(entry, dict) or not {"path", "base_model", "rank"} <= entry.keys():
            raise AdapterError(
                f"Adapter registry {file}: role {role!r} needs 'path', 'base_model' and 'rank'."
            )
        path = Path(str(entry["path"])).expanduser()
        if not path.is_absolute():
            path = file.parent / path
        specs[role] = validate_adapter(
            str(role),
            path,
            str(entry["base_model"]),
            int(entry["rank"]),
            served_model=served_model,
            max_lora_rank=max_lora_rank,
        )
    return specs


PromptStyle = Literal["sciserve", "awl"]


@dataclass(frozen=True)
class TrainedLayout:
    """The prompt layout a policy adapter was trained on, and for which domains: a
    policy trained on AWL's layout for the four scientific domains answers those in
    it, and everything else (math) in the layout it was not trained away from."""

    style: PromptStyle
    domains: frozenset[str] | None = None  # None: every question


def trained_layout(registry: Path | None) -> TrainedLayout | None:
    """What the registry's policy adapter's model card says it was trained on
    (`prompt_style`, and `prompt_domains` when only some domains were): serving the
    adapter makes that layout the default there. None: no card says."""
    if registry is None:
        return None
    card_file = registry.parent / "policy" / "card.json"
    if not card_file.is_file():
        return None
    card = json.loads(card_file.read_text())
    style = card.get("prompt_style")
    if style not in get_args(PromptStyle):
        return None
    domains = card.get("prompt_domains")
    return TrainedLayout(style, None if domains is None else frozenset(map(str, domains)))


def shipped_registry(demo_model: str, root: Path = SHIPPED) -> Path | None:
    """The registry of the trained adapters shipped for `demo_model`, if any: the
    embedded default serves them, so `sciserve serve` answers with the trained roles."""
    file = root / demo_model / REGISTRY_FILE
    return file if file.is_file() else None
