"""Which tools the adaptive prompt shows.

Thirteen tool specs are about 28k characters (7-8k tokens for Qwen2.5), more than a
4k context. AWL shows each domain only its own tools; without a domain, the tools are
ranked by BM25 between the problem and each tool's name and description.

- `fit_tools` (AWL's layout, where the domain already chose the servers): the ranked
  tools, best first, while the prompt still leaves room for the answer and the loop.
- `show_tools` (the sciserve layout, where no domain is known): at most
  `ToolCap.max_tools` tools relevant to the problem by `ToolCap.min_relevance`, best
  first, then the basics (the python tool), as far as they fit. Before this cap the
  sciserve layout filled the context with tools: "What is 15% of 80?" sent a
  1,992-token prompt of mechanics and epidemic schemas, and the demo model's first
  answer on 2 CPU cores took 54 s instead of 26 s. `PROMPT_TOOL_CAP` is the cap the
  adaptive stage applies; `cap=None` is the uncapped prompt, which
  bench/first_answer.py measures beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.strategies.retrieval import Bm25Retriever, words

LOOP_SHARE = 0.25  # of the context kept for tool calls and results in the loop
PYTHON_TOOL = "write_and_run_code"
BM25_K1 = 1.5  # rank-bm25's default, which Bm25Retriever uses

# Words that say nothing about a tool's domain. Without them removed, "What is 15% of
# 80?" matched the mechanics tools on "is" and "of", and the clips question's "in May"
# matched "two spheres that may collide". A short hand-kept list, since
# scikit-learn's (the nearest library list) costs the worker 1-2 s of import for it.
STOP_WORDS = frozenset(
    words(
        """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    either else every few for from further had has have having he her here hers herself
    him himself his how i if in into is it its itself just may me might more most much
    must my myself no nor not now of off on once one only or other our ours ourselves out
    over own per same shall she should so some such than that the their theirs them
    themselves then there these they this those through to too two under until up upon us
    very was we were what when where which while who whom whose why will with within
    without would you your yours yourself"""
    )
)


@dataclass(frozen=True)
class ToolCap:
    """How many tools the sciserve layout shows beside the basics, and how relevant each
    must be. Every schema shown is prefilled on every engine call of the job (a simulator
    is 600-1,100 tokens), and a model shown tools it has no use for is tempted to call
    them (the Qwen demo models answer a bare "do you need a tool?" with yes even for
    trivial facts).
    """

    # A problem that names a domain matches its tools: a heat equation the PDE solver
    # (and the climate tool on "temperature"), a pendulum the two pendulum scenes. AWL
    # shows one domain's tools; three leaves room for a second domain or a runner-up.
    max_tools: int = 3
    # In units of one problem word that only one tool's text has (BM25's largest IDF):
    # one shared word, however often a description repeats it, scores below k1 + 1 =
    # 2.5 of them, so a tool needs two distinctive words in common with the problem.
    # Measured on the five servers' 13 tools: the README's clips question and GSM8K's
    # ducks reach 1.1 and 1.7 (on "half" and "day"), a heat equation, a pendulum, an SIR
    # epidemic and an SSP warming question 3.9-7.4 for their own tools.
    min_relevance: float = BM25_K1 + 1
    # Shown whenever allowed and fitting, whatever the problem: the python sandbox is
    # general arithmetic and the one tool a problem with no domain may want.
    basics: frozenset[str] = frozenset({PYTHON_TOOL})


PROMPT_TOOL_CAP = ToolCap()


def _document(spec: dict[str, Any]) -> str:
    return f"{spec['function']['name']} {spec['function'].get('description', '')}"


def rank_tools(problem: str, specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Specs most relevant first; ties keep the servers' order."""
    if len(specs) < 2:
        return list(specs)
    scores = Bm25Retriever([_document(s) for s in specs]).scores(problem)
    order = sorted(range(len(specs)), key=lambda i: -scores[i])
    return [specs[i] for i in order]


def relevance(problem: str, specs: Sequence[dict[str, Any]]) -> np.ndarray | None:
    """Each spec's BM25 score against the problem's distinct content words, in units of
    the largest IDF (a word only one spec has). None where the specs are too few for
    IDF to tell tools apart (BM25's IDF of a word in one of two documents is 0)."""
    unit = math.log((len(specs) - 0.5) / 1.5) if len(specs) > 2 else 0.0
    if unit <= 0:
        return None
    # Each word once: BM25 sums over query words, so "day ... every day" counted twice.
    query = " ".join(sorted(set(words(problem)) - STOP_WORDS))
    return Bm25Retriever([_document(s) for s in specs]).scores(query) / unit


def _fit(
    specs: Sequence[dict[str, Any]], budget_tokens: int | None, count_tokens: Callable[[str], int]
) -> list[dict[str, Any]]:
    """`specs` in order, each while it still fits `budget_tokens` (None: all)."""
    if budget_tokens is None:
        return list(specs)
    chosen, used = [], 0
    for spec in specs:
        cost = count_tokens(json.dumps(spec, ensure_ascii=False)) + 2
        if used + cost <= budget_tokens:
            chosen.append(spec)
            used += cost
    return chosen


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
    return _fit(rank_tools(problem, specs), budget_tokens, count_tokens)


def show_tools(
    problem: str,
    specs: Sequence[dict[str, Any]],
    *,
    budget_tokens: int | None,
    count_tokens: Callable[[str], int],
    cap: ToolCap | None,
) -> list[dict[str, Any]]:
    """At most `cap.max_tools` tools relevant enough, best first, then the basics, as
    far as they fit `budget_tokens` (None: all): a tight context keeps the problem's own
    domain before the general python tool, as the uncapped ranking did. Never none
    where one fits: with no basic allowed and nothing relevant, the best-ranked tool (a
    request may name only the pde server, or require a tool). `cap` None: `fit_tools`,
    the uncapped prompt."""
    if cap is None:
        return fit_tools(problem, specs, budget_tokens=budget_tokens, count_tokens=count_tokens)
    basics = [s for s in specs if s["function"]["name"] in cap.basics]
    others = [s for s in specs if s["function"]["name"] not in cap.basics]
    scores = relevance(problem, specs)
    if scores is None:
        ranked = rank_tools(problem, others)
    else:
        score = {id(spec): float(value) for spec, value in zip(specs, scores, strict=True)}
        ranked = sorted(others, key=lambda s: -score[id(s)])
        ranked = [s for s in ranked if score[id(s)] >= cap.min_relevance]
    shown = _fit([*ranked[: cap.max_tools], *basics], budget_tokens, count_tokens)
    if not shown:
        shown = _fit(rank_tools(problem, others), budget_tokens, count_tokens)[:1]
    return shown
