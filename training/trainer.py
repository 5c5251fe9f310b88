"""`sciserve train sft|dpo`: a LoRA adapter for one role, trained with trl on the
served base model, written where vLLM loads it, and registered.

Why trl and peft and not a hand-written loop: SFT on the completion only (the prompt
is the served prompt, not a target) and DPO with the adapter-disabled model as its
reference are what those trainers do, and their adapters are the format vLLM loads.
LoRA targets the attention and MLP projections every vLLM LoRA kernel supports.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from adapters.registry import ROLES, load_registry, validate_adapter
from training.rows import Method, load_examples

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LOSS_LOG = "loss.jsonl"
TRAIN_CARD = "training.json"


@dataclass
class TrainConfig:
    method: Method
    role: str
    data: Path
    out: Path
    base_model: str
    rank: int = 8
    alpha: int | None = None  # None: 2 x rank
    learning_rate: float | None = None  # None: 2e-4 (SFT), 5e-6 x 10 (DPO, LoRA)
    max_steps: int = -1  # -1: run `epochs`
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 2048
    beta: float = 0.1  # DPO's
    seed: int = 0
    dtype: Literal["float32", "bfloat16"] = "float32"  # CPU trains in float32
    # Which projections get LoRA (None: all seven). Fewer keep a shipped adapter small:
    # a rank-8 adapter on q/v alone is about a tenth of one on all seven.
    target_modules: list[str] | None = None
    # A wall-clock budget: training ends after the step that passes it (the card says how
    # many steps ran). None: no budget. A CPU run is planned in minutes, not steps.
    max_seconds: float | None = None


@dataclass
class TrainReport:
    adapter: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    examples: int = 0

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


StepHook = Callable[[int, int, float | None], None]  # (step, total, loss)


def train(config: TrainConfig, on_step: StepHook | None = None) -> TrainReport:
    """Train, save the adapter to `config.out`, and write its loss log and card."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback

    if config.role not in ROLES:
        raise ValueError(f"unknown role {config.role!r}; the roles are {', '.join(ROLES)}.")
    examples = load_examples(config.data, config.method)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        config.base_model, dtype=getattr(torch, config.dtype)
    )
    targets = [m for m in config.target_modules or TARGET_MODULES if _has_module(model, m)]
    if not targets or len(targets) < len(config.target_modules or ()):
        raise ValueError(
            f"target modules {config.target_modules} are not all in the model; "
            f"choose among {', '.join(TARGET_MODULES)}."
        )
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha or 2 * config.rank,
        lora_dropout=0.0,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    losses: list[float] = []
    log_path = out / LOSS_LOG
    log_path.write_text("")

    class Progress(TrainerCallback):  # type: ignore[misc]
        """Loss log (JSONL, one line per step) and the caller's progress hook."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                with log_path.open("a") as handle:
                    handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")
                if on_step is not None:
                    on_step(state.global_step, state.max_steps, float(logs["loss"]))

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            budget = config.max_seconds
            if budget is not None and time.perf_counter() - started > budget:
                control.should_training_stop = True

    common: dict[str, Any] = {
        "output_dir": str(out / "checkpoints"),
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "max_steps": config.max_steps,
        "num_train_epochs": config.epochs,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "seed": config.seed,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": config.dtype == "bfloat16",
        "max_length": config.max_length,
    }
    dataset = Dataset.from_list(examples)
    started = time.perf_counter()
    trainer: Any
    if config.method == "sft":
        from trl import SFTConfig, SFTTrainer

        sft_args = SFTConfig(
            **common, learning_rate=config.learning_rate or 2e-4, completion_only_loss=True
        )
        trainer = SFTTrainer(
            model=model,
            args=sft_args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[Progress()],
        )
    else:
        from trl import DPOConfig, DPOTrainer

        dpo_args = DPOConfig(**common, learning_rate=config.learning_rate or 5e-5, beta=config.beta)
        trainer = DPOTrainer(
            model=model,
            args=dpo_args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[Progress()],
        )
    trainer.remove_callback(PrinterCallback)  # the loss log and the hook report instead
    if len(trainer.train_dataset) == 0:  # trl drops rows whose completion max_length cuts off
        raise ValueError(
            f"None of the {len(examples)} examples in {config.data} fits max_length="
            f"{config.max_length} tokens with its completion; raise --max-length."
        )
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.model.save_pretrained(str(out))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # save_strategy "no": empty
    report = TrainReport(out, trainer.state.global_step, losses, seconds, len(examples))
    card = {
        **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "steps": report.steps,
        "examples": report.examples,
        "first_loss": report.first_loss,
        "last_loss": report.last_loss,
        "seconds": round(seconds, 2),
    }
    (out / TRAIN_CARD).write_text(json.dumps(card, indent=2) + "\n")
    return report


def save_bf16(adapter: Path) -> int:
    """Rewrite the adapter's weights in bf16, the format the repository ships (CPU
    training saves float32: twice the bytes for no served difference, since vLLM runs
    LoRA in the model's dtype). Returns the weights' size in bytes."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = adapter / "adapter_model.safetensors"
    tensors = {name: t.to(torch.bfloat16).contiguous() for name, t in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    return weights.stat().st_size


def _has_module(model: Any, suffix: str) -> bool:
    return any(name.endswith(suffix) for name, _ in model.named_modules())


def adapter_rank(adapter: Path) -> int:
    return int(json.loads((adapter / "adapter_config.json").read_text())["r"])


def register(
    registry: Path, role: str, adapter: Path, base_model: str, *, max_lora_rank: int = 64
) -> None:
    """Put `adapter` behind `role` in a registry file (adapters/registry.py format),
    keeping the other roles; the entry is validated as the service will validate it."""
    rank = adapter_rank(adapter)
    validate_adapter(
        role, adapter, base_model, rank, served_model=base_model, max_lora_rank=max_lora_rank
    )
    raw: dict[str, Any] = {"adapters": {}}
    if registry.is_file():
        raw = yaml.safe_load(registry.read_text()) or {"adapters": {}}
        raw.setdefault("adapters", {})
    raw["adapters"][role] = {"path": str(adapter.resolve()), "base_model": base_model, "rank": rank}
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text(yaml.safe_dump(raw, sort_keys=True))
    load_registry(registry, served_model=base_model, max_lora_rank=max_lora_rank)


def hot_load(
    url: str, admin_key: str, role: str, adapter: Path, base_model: str, timeout_s: float = 120
) -> dict[str, Any]:
    """POST /admin/adapters on a running worker or embedded service."""
    import httpx

    response = httpx.post(
        f"{url.rstrip('/')}/admin/adapters",
        headers={"X-Admin-Key": admin_key},
        json={
            "role": role,
            "path": str(adapter.resolve()),
            "base_model": base_model,
            "rank": adapter_rank(adapter),
        },
        timeout=timeout_s,
    )
    if response.status_code >= 400:
        raise RuntimeError(
            f"{url} refused the adapter ({response.status_code}): {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body
