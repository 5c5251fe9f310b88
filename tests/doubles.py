"""`ScriptedEngine`, the named test double of the `Engine` protocol.

Where model output decides a branch (tool call or direct answer, refine or not, a vote
tie), a random-weight model cannot be steered, so this double returns fixed strings
chosen by a rule on the request. Everything around the strings is real: the tiny
model's tokenizer and chat template give the token counts, and adapters are real
`AdapterSpec`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.registry import AdapterSpec
from workers.engines.base import Completion, GenerationRequest, render_prompt_ids

Rule = tuple[str, str | list[str]]


def last_user_message(request: GenerationRequest) -> str:
    assert request.messages is not None
    return next(m["content"] for m in reversed(request.messages) if m["role"] == "user")


class ScriptedEngine:
    """Answers each request from `rules`: the first (substring, output) whose substring
    is in the request's last user or tool turn. An output list gives the `n` samples
    (or successive calls, cycling). `calls` records every request. Asked for log
    probabilities, every token gets `logprob`."""

    model_name = "scripted"

    def __init__(
        self,
        tokenizer: Any,
        rules: Sequence[Rule],
        roles: Sequence[str] = ("policy", "asker", "truster"),
        fallback: str = "I do not know.",
    ):
        self._tokenizer = tokenizer
        self.rules = list(rules)
        self.fallback = fallback
        self.calls: list[GenerationRequest] = []
        self.logprob = -0.1  # every token's log probability, when a request asks for them
        self._uses: dict[int, int] = {}
        self._adapters = {
            role: AdapterSpec(role=role, path=Path("/nonexistent"), base_model="scripted", rank=8)
            for role in roles
        }

    def _outputs(self, request: GenerationRequest) -> list[str]:
        assert request.messages is not None
        last = request.messages[-1]["content"]
        for index, (needle, output) in enumerate(self.rules):
            if needle in last:
                if isinstance(output, str):
                    return [output] * request.n
                start = self._uses.get(index, 0)
                self._uses[index] = start + request.n
                return [output[(start + i) % len(output)] for i in range(request.n)]
        return [self.fallback] * request.n

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = []
        for request in requests:
            self.calls.append(request)
            texts = self._outputs(request)
            token_ids = [self._tokenizer.encode(t, add_special_tokens=False) for t in texts]
            completions.append(
                Completion(
                    texts=texts,
                    token_ids=token_ids,
                    prompt_tokens=len(render_prompt_ids(self._tokenizer, request)),
                    finish_reasons=["stop"] * len(texts),
                    logprobs=[[self.logprob] * len(ids) for ids in token_ids]
                    if request.sampling.logprobs
                    else None,
                )
            )
        return completions

    async def start(self) -> None: ...

    async def load_adapter(self, spec: AdapterSpec) -> None:
        self._adapters[spec.role] = spec

    async def unload_adapter(self, role: str) -> None:
        self._adapters.pop(role, None)

    def adapters(self) -> dict[str, AdapterSpec]:
        return dict(self._adapters)

    async def health(self) -> bool:
        return True

    def tokenizer(self) -> Any:
        return self._tokenizer

    async def close(self) -> None: ...
