"""BM25 over words, shared by few-shot example retrieval and tool ranking."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def words(text: str) -> list[str]:
    """Lower-case letter and digit runs; `_` splits too, so `simulate_epidemic` is two
    words."""
    return re.findall(r"[a-z0-9]+", text.lower())


class Bm25Retriever:
    """Scores of every document against a query (rank-bm25's Okapi BM25)."""

    def __init__(self, documents: Sequence[str]):
        from rank_bm25 import BM25Okapi

        self._index = BM25Okapi([words(text) for text in documents])

    def scores(self, query: str) -> np.ndarray:
        return np.asarray(self._index.get_scores(words(query)), dtype=float)
