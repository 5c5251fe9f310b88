"""A tiny Llama plus random LoRA adapters, built locally in about a second (DESIGN §3).

The weights are random, so its text is gibberish; it exists so that tests and
benchmarks run a *real* vLLM engine, tokenizer, chat template and LoRA path without
any download. float32 + greedy decoding make outputs deterministic and comparable
token for token with the transformers+peft reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Enough varied text for a byte-level BPE to learn digits, words and LaTeX pieces.
_CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May.",
    "How many clips did Natalia sell altogether in April and May? The answer is 72.",
    "Solve for x: 3x + 5 = 20. Subtract 5 from both sides, then divide by 3, so x = 5.",
    "The final answer is \\boxed{42}. Please answer the following question.",
    "A ball is dropped from a height of 10 m. Ignoring air resistance, g = 9.81 m/s^2.",
    "Your answer should end with 'the answer is A/B/C/D'. Options: A, B, C, D.",
    "The heat equation u_t = D u_xx with Dirichlet boundary conditions on [0, L].",
    "There might be an error in the solution above. Please correct the error, if any.",
    "Here is my thought process: first compute the total. Here is my response: 12.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 1,234 3.14159 2.71828 -7 1/2 sqrt(2) pi",
]


@dataclass(frozen=True)
class TinyModel:
    """Paths of a built tiny model and its adapters (role → folder)."""

    model_dir: Path
    adapters: dict[str, Path]
    registry: Path
    rank: int


def _train_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)


def _token_id(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(token_id, int), f"{token} is not one token"
    return token_id


def build_tiny_model(
    out: Path,
    *,
    roles: tuple[str, ...] = ("policy", "asker", "truster"),
    rank: int = 8,
    seed: int = 0,
) -> TinyModel:
    """Write the model to `out/model`, adapters to `out/adapters/ROLE`, and a registry."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    _train_tokenizer(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,  # head_dim 32: vLLM CPU needs head_dim >= 32
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        # A wide init separates the top logits, so greedy parity is not decided by
        # float rounding between two near-tied tokens.
        initializer_range=0.2,
        eos_token_id=_token_id(tokenizer, "<|im_end|>"),
        pad_token_id=_token_id(tokenizer, "<|endoftext|>"),
        bos_token_id=None,
        tie_word_embeddings=False,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float()
    model.save_pretrained(model_dir, safe_serialization=True)
    model.generation_config.save_pretrained(model_dir)

    adapters: dict[str, Path] = {}
    for index, role in enumerate(roles):
        torch.manual_seed(seed + 1 + index)
        lora = LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
            target_modules=["q_proj", "v_proj"],
            lora_dropout=0.0,
            bias="none",
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(LlamaForCausalLM.from_pretrained(model_dir), lora)
        # peft zero-inits lora_B, which makes an adapter a no-op; random B makes each
        # adapter change the output, so a wrong adapter in a batch is visible.
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_A" in name or "lora_B" in name:
                    param.normal_(0.0, 0.3)
        adapter_dir = out / "adapters" / role
        peft_model.save_pretrained(str(adapter_dir))
        adapters[role] = adapter_dir

    registry = out / "adapters.yaml"
    registry.write_text(
        json.dumps(
            {
                "adapters": {
                    role: {"path": f"adapters/{role}", "base_model": str(model_dir), "rank": rank}
                    for role in adapters
                }
            },
            indent=2,
        )
    )
    return TinyModel(model_dir=model_dir, adapters=adapters, registry=registry, rank=rank)
