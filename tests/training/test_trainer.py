"""`training.trainer` on the tiny model: a few SFT and DPO steps with trl and peft whose
loss goes down, an adapter the registry accepts, hot-loaded into the running vLLM
engine through POST /admin/adapters, where it changes the policy's output.

No test double: real trl, peft, vLLM CPU engine and HTTP. The data comes from the
builder traces (tests/training/conftest.py names the scripted engine that wrote them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import load_registry
from tests.conftest import ADMIN_KEY, Service
from training.build import build
from training.trainer import LOSS_LOG, TRAIN_CARD, TrainConfig, TrainReport, hot_load, register
from training.trainer import train as run_training
from workers.engines.base import GenerationRequest, Sampling
from workers.models.tiny import TinyModel

PROBE = [{"role": "user", "content": "There might be an error in the solution above."}]


def policy_output(service: Service) -> list[int]:
    request = GenerationRequest(messages=PROBE, role="policy", sampling=Sampling(max_tokens=12))
    [completion] = service.call(service.engine.generate([request]))
    return completion.token_ids[0]


@pytest.fixture()
def restore_policy(service: Service, tiny_model: TinyModel) -> Iterator[None]:
    """Other tests expect the tiny model's own policy adapter: put it back."""
    yield
    hot_load(
        service.url, ADMIN_KEY, "policy", tiny_model.adapters["policy"], str(tiny_model.model_dir)
    )


def trained(
    method: str, kind: str, trace_dir: Path, tmp_path: Path, tiny_model: TinyModel, **options: float
) -> TrainReport:
    data = tmp_path / f"{kind}.jsonl"
    build(kind, [trace_dir], data, seed=0)
    config = TrainConfig(
        method,  # type: ignore[arg-type]
        "policy",
        data,
        tmp_path / f"{method}-adapter",
        str(tiny_model.model_dir),
        rank=8,
        max_steps=4,
        batch_size=2,
        **options,  # type: ignore[arg-type]
    )
    return run_training(config)


def assert_learned(report: TrainReport) -> None:
    assert report.steps == 4 and len(report.losses) == 4
    assert report.last_loss is not None and report.first_loss is not None
    assert report.last_loss < report.first_loss
    logged = [json.loads(line) for line in (report.adapter / LOSS_LOG).read_text().splitlines()]
    assert [row["step"] for row in logged] == [1, 2, 3, 4]
    card = json.loads((report.adapter / TRAIN_CARD).read_text())
    assert card["steps"] == 4 and card["last_loss"] == report.last_loss
    assert (report.adapter / "adapter_model.safetensors").is_file()


@pytest.mark.usefixtures("restore_policy")
def test_sft_lowers_the_loss_and_its_adapter_changes_the_served_output(
    service: Service, trace_dir: Path, tmp_path: Path, tiny_model: TinyModel
) -> None:
    report = trained("sft", "score", trace_dir, tmp_path, tiny_model, learning_rate=1e-2)
    assert_learned(report)
    registry = tmp_path / "adapters.yaml"
    register(registry, "policy", report.adapter, str(tiny_model.model_dir), max_lora_rank=16)
    specs = load_registry(registry, served_model=str(tiny_model.model_dir), max_lora_rank=16)
    assert specs["policy"].path == report.adapter.resolve() and specs["policy"].rank == 8

    before = policy_output(service)
    loaded = hot_load(service.url, ADMIN_KEY, "policy", report.adapter, str(tiny_model.model_dir))
    assert loaded["loaded"] is True and loaded["path"] == str(report.adapter.resolve())
    assert policy_output(service) != before


@pytest.mark.usefixtures("restore_policy")
def test_dpo_lowers_the_loss_and_its_adapter_changes_the_served_output(
    service: Service, trace_dir: Path, tmp_path: Path, tiny_model: TinyModel
) -> None:
    report = trained("dpo", "tpo", trace_dir, tmp_path, tiny_model, learning_rate=1e-3)
    assert_learned(report)
    assert report.first_loss == pytest.approx(0.6931, abs=1e-3)  # DPO starts at log 2
    before = policy_output(service)
    hot_load(service.url, ADMIN_KEY, "policy", report.adapter, str(tiny_model.model_dir))
    assert policy_output(service) != before


def test_a_dataset_of_the_wrong_shape_is_refused(tmp_path: Path, tiny_model: TinyModel) -> None:
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps({"prompt": [], "completion": []}) + "\n")
    config = TrainConfig("dpo", "policy", data, tmp_path / "out", str(tiny_model.model_dir))
    with pytest.raises(ValueError, match="has no chosen, rejected"):
        run_training(config)


def test_a_dataset_that_max_length_empties_is_a_clear_error(
    tmp_path: Path, tiny_model: TinyModel
) -> None:
    """trl drops every row whose completion the length limit cuts off; training on what
    is left (nothing) used to fail deep in torch with `num_samples=0`."""
    long_prompt = [{"role": "user", "content": "How much is 2 + 2? " * 200}]
    row = {"prompt": long_prompt, "completion": [{"role": "assistant", "content": "4"}]}
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps(row) + "\n")
    config = TrainConfig(
        "sft", "policy", data, tmp_path / "out", str(tiny_model.model_dir), max_length=64
    )
    with pytest.raises(ValueError, match="fits max_length=64"):
        run_training(config)


def sciserve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "entrypoints.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def sciserve_train(method: str, rows: list[Any], tmp_path: Path, model: TinyModel) -> Path:
    """`sciserve train METHOD` for one optimizer step on `rows`; the adapter folder."""
    data, out = tmp_path / f"{method}.jsonl", tmp_path / f"{method}-adapter"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = sciserve(
        "train", method, "--role", "policy", "--data", str(data), "--out", str(out),
        "--base-model", str(model.model_dir), "--steps", "1", "--batch-size", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "adapter_model.safetensors").is_file()
    [logged] = [json.loads(line) for line in (out / LOSS_LOG).read_text().splitlines()]
    assert logged["step"] == 1 and logged["loss"] > 0
    return out


def test_sciserve_train_sft_takes_openai_messages_rows(
    tmp_path: Path, tiny_model: TinyModel
) -> None:
    system = {"role": "system", "content": "Answer in \\boxed{}."}
    rows = [
        {"messages": [system, {"role": "user", "content": f"What is {n} + {n}?"},
                      {"role": "assistant", "content": f"\\boxed{{{2 * n}}}"}]}
        for n in (1, 2)
    ]  # fmt: skip
    out = sciserve_train("sft", rows, tmp_path, tiny_model)
    assert json.loads((out / TRAIN_CARD).read_text())["examples"] == 2


def test_sciserve_train_dpo_takes_message_list_rows(tmp_path: Path, tiny_model: TinyModel) -> None:
    question = {"role": "user", "content": "What is 2 + 2?"}
    rows = [
        {"prompt": [question], "chosen": [{"role": "assistant", "content": "\\boxed{4}"}],
         "rejected": [{"role": "assistant", "content": "\\boxed{5}"}]},
        {"prompt": "What is 3 + 3?", "chosen": [{"role": "assistant", "content": "\\boxed{6}"}],
         "rejected": "\\boxed{7}"},  # a string prompt and reply become turns
    ]  # fmt: skip
    sciserve_train("dpo", rows, tmp_path, tiny_model)


def test_sciserve_train_names_the_row_that_fits_no_form(
    tmp_path: Path, tiny_model: TinyModel
) -> None:
    data = tmp_path / "chat.jsonl"
    user = {"role": "user", "content": "What is 2 + 2?"}
    data.write_text(json.dumps({"messages": [user]}) + "\n")
    done = sciserve(
        "train", "sft", "--role", "policy", "--data", str(data), "--out", str(tmp_path / "out"),
        "--base-model", str(tiny_model.model_dir),
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{data}:1 `messages` has no assistant turn" in done.stderr


def test_a_messages_row_puts_the_loss_on_its_last_assistant_turn_only(
    tmp_path: Path, tiny_model: TinyModel
) -> None:
    """trl trains every token of a `messages` row; as prompt-completion only the
    completion is a label."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from training.rows import load_examples

    messages = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "5"},
        {"role": "user", "content": "Sure?"},
        {"role": "assistant", "content": "4"},
    ]
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": messages}) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    args = SFTConfig(
        output_dir=str(tmp_path / "out"), completion_only_loss=True, report_to=[], use_cpu=True
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(str(tiny_model.model_dir)),
        args=args,
        train_dataset=Dataset.from_list(load_examples(data, "sft")),
        processing_class=tokenizer,
    )
    prepared: Any = trainer.train_dataset  # trl types it as a Dataset or None
    row = prepared[0]
    pairs = zip(row["input_ids"], row["labels"], strict=True)
    labels = [token for token, label in pairs if label != -100]
    assert tokenizer.decode(labels) == "4<|im_end|>\n"


def test_a_truster_on_two_projections_trains_and_ships_in_bf16(
    trace_dir: Path, tmp_path: Path, tiny_model: TinyModel
) -> None:
    """The shipped adapters' recipe: LoRA on chosen projections only, saved in bf16,
    accepted by the registry as the Truster."""
    from safetensors import safe_open

    from training.trainer import save_bf16

    data = tmp_path / "pairs.jsonl"
    build("truster-pairs", [trace_dir], data, seed=0)
    config = TrainConfig(
        "sft", "truster", data, tmp_path / "truster", str(tiny_model.model_dir),
        rank=4, max_steps=2, batch_size=2, target_modules=["q_proj", "v_proj"],
    )  # fmt: skip
    report = run_training(config)
    adapter = report.adapter
    config_json = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(config_json["target_modules"]) == ["q_proj", "v_proj"]
    float32_bytes = (adapter / "adapter_model.safetensors").stat().st_size
    assert save_bf16(adapter) < 0.6 * float32_bytes
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as weights:
        names = list(weights.keys())
        assert names and all("q_proj" in n or "v_proj" in n for n in names)
        assert {str(weights.get_tensor(n).dtype) for n in names} == {"torch.bfloat16"}
    registry = tmp_path / "adapters.yaml"
    register(registry, "truster", adapter, str(tiny_model.model_dir), max_lora_rank=16)
    specs = load_registry(registry, served_model=str(tiny_model.model_dir), max_lora_rank=16)
    assert specs["truster"].rank == 4


def test_an_unknown_target_module_is_a_clear_error(
    trace_dir: Path, tmp_path: Path, tiny_model: TinyModel
) -> None:
    data = tmp_path / "pairs.jsonl"
    build("truster-pairs", [trace_dir], data, seed=0)
    config = TrainConfig(
        "sft", "truster", data, tmp_path / "out", str(tiny_model.model_dir),
        target_modules=["q_proj", "attention_dense"],
    )  # fmt: skip
    with pytest.raises(ValueError, match="not all in the model"):
        run_training(config)


def test_a_time_budget_ends_training_after_the_step_that_passes_it(
    trace_dir: Path, tmp_path: Path, tiny_model: TinyModel
) -> None:
    """A CPU run is planned in minutes: with the budget spent at once, one step runs (not
    the ten asked for), the adapter is saved and the card says how many steps ran."""
    data = tmp_path / "pairs.jsonl"
    build("truster-pairs", [trace_dir], data, seed=0)
    config = TrainConfig(
        "sft", "truster", data, tmp_path / "truster", str(tiny_model.model_dir),
        rank=4, max_steps=10, batch_size=1, max_seconds=0.0,
    )  # fmt: skip
    report = run_training(config)
    assert report.steps == 1
    assert (report.adapter / "adapter_model.safetensors").is_file()
    card = json.loads((report.adapter / "training.json").read_text())
    assert card["steps"] == 1 and card["max_seconds"] == 0.0
