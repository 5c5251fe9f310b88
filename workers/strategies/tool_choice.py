"""Which tools the adaptive prompt shows: all allowed ones when they fit the model's
context, else the most relevant that fit.

Thirteen tool specs are about 28k characters (7-8k tokens for Qwen2.5), more than a
4k context. AWL shows each domain only its own tools; without a domain, the tools are
ranked by BM25 between the problem and each tool's name and description, and added
best first while the prompt still leaves room for the answer and the tool loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from workers.strategies.retrieval import Bm25Retriever

LOOP_SHARE = 0.25  # of the context kept for tool calls and results in the loop


def rank_tools(problem: str, specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Specs most relevant first; ties keep the servers' order."""
    if len(specs) < 2:
        return list(specs)
    documents = [f"{s['function']['name']} {s['function'].get('description', '')}" for s in specs]
    scores = Bm25Retriever(documents).scores(problem)
    order = sorted(range(len(specs)), key=lambda i: -scores[i])
    return [specs[i] for i in order]


def fit_tools(
    problem: str,
    specs: Sequence[dict[str, Any]],
    *,
    budget_tokens: int | None,
    count_tokens: Callable[[str], int],
) -> list[dict[str, Any]]:
    """As many of `specs` as fit `budget_tokens` (None: all), most relevant first."""
    if budget_tokens is None:
        return list(specs)
    chosen, used = [], 0
    for spec in rank_tools(problem, specs):
        cost = count_tokens(json.dumps(spec, ensure_ascii=False)) + 2
        if used + cost <= budget_tokens:
            chosen.append(spec)
            used += cost
    return chosen
