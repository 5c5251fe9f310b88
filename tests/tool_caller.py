"""A real LoRA adapter for the tiny model that calls the python tool, then answers.

The tiny model's weights are random, so it never writes a tool call of its own; the
trace page's browser tests need real tool calls (and a python tool whose output carries
untrusted markup) on the real vLLM engine. This trains a LoRA adapter with peft on the
tiny model, on the very prompts the worker will send (`first_turns`, built with the
worker's own prompt functions and the served manifest): after such a prompt it writes
`call`, and after the tool's result it answers with `answer_question`. A few such prompts
are learnt by heart in a minute on one CPU thread; greedy decoding (a vote's sample 0)
then reproduces them exactly on vLLM.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workers.models.tiny import TinyModel
from workers.prompts import tool_result_message

RANK = 16
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
Messages = list[dict[str, str]]


def call_text(code: str) -> str:
    """A `write_and_run_code` call as the tool prompt asks for it."""
    return json.dumps(
        {"name": "write_and_run_code", "parameters": {"thought": "run it", "code": code}},
        ensure_ascii=False,
    )


def answer_text(answer: str) -> str:
    return json.dumps(
        {"name": "answer_question", "parameters": {"thought": "the tool ran", "answer": answer}}
    )


def after_the_call(messages: Messages, call: str, result: Mapping[str, Any]) -> Messages:
    """The conversation the tool loop continues with (workers/strategies/tool_loop.py):
    the call, then the tool's result as a `tool` turn."""
    return [
        *messages,
        {"role": "assistant", "content": call},
        tool_result_message("write_and_run_code", {"result": dict(result)}),
    ]


def train_tool_caller(
    model: TinyModel,
    out: Path,
    first_turns: Sequence[Messages],
    *,
    call: str,
    result: Mapping[str, Any],
    answer: str = "42",
    max_steps: int = 600,
    seed: int = 0,
) -> Path:
    """Train until every example's loss is near zero (or `max_steps`), save to `out`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(1)  # a tiny model: more threads only fight over busy cores
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model.model_dir))

    def ids(messages: Messages, target: str) -> tuple[list[int], list[int]]:
        rendered: Any = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True
        )
        if not isinstance(rendered, list):  # transformers 5 returns a BatchEncoding
            rendered = rendered["input_ids"]
        target_ids = tokenizer(target + "<|im_end|>", add_special_tokens=False)["input_ids"]
        return [int(i) for i in rendered], [int(i) for i in target_ids]

    examples = [ids(turn, call) for turn in first_turns] + [
        ids(after_the_call(turn, call, result), answer_text(answer)) for turn in first_turns
    ]
    peft_model = get_peft_model(
        LlamaForCausalLM.from_pretrained(str(model.model_dir)),
        LoraConfig(
            r=RANK, lora_alpha=2 * RANK, target_modules=TARGETS, lora_dropout=0.0,
            bias="none", task_type="CAUSAL_LM",
        ),
    )  # fmt: skip
    optimizer = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=3e-3)
    peft_model.train()
    worst = 0.0  # the largest loss in the current round of examples
    for step in range(max_steps):
        prompt, target = examples[step % len(examples)]
        optimizer.zero_grad()
        loss = peft_model(
            input_ids=torch.tensor([prompt + target]),
            labels=torch.tensor([[-100] * len(prompt) + target]),
        ).loss
        loss.backward()
        optimizer.step()
        worst = loss.item() if step % len(examples) == 0 else max(worst, loss.item())
        if step % len(examples) == len(examples) - 1 and worst < 0.002:
            break  # a whole round of examples is learnt
    peft_model.save_pretrained(str(out))
    return out
