"""The prompt text that both serving and training must write the same way.

A trained role only helps if it is served the text it was trained on: the worker
(`workers/strategies/art.py`) asks the Truster in this prompt, and the dataset builders
(`training/art.py`) write their examples in it, so both import it from here.
"""

from __future__ import annotations

from collections.abc import Sequence

TRUSTER_PROMPT = (
    "You judge solutions to a problem and pick the one most likely to be correct.\n\n"
    "Problem:\n{problem}\n\n{solutions}\n\n"
    "Which solution is correct? Reply with only its label, {labels}, and nothing else."
)


def format_options(options: list[str]) -> str:
    """Options as AWL lists them: one `A. text` per line."""
    return "\n".join(f"{chr(ord('A') + i)}. {option}" for i, option in enumerate(options))


def question_text(problem: str, options: list[str] | None) -> str:
    """The problem with its options, as the Asker and Truster see it."""
    return f"{problem}\n\n{format_options(options)}" if options else problem


def truster_prompt(problem: str, solutions: Sequence[str]) -> str:
    """Solutions are numbered from 1 in the order given (ART's caller shuffles initial
    and refined), and the reply asked for names those labels, not a placeholder."""
    labels = [f"Solution {i}" for i in range(1, len(solutions) + 1)]
    listed = "\n\n".join(f"{label}:\n{text}" for label, text in zip(labels, solutions, strict=True))
    return TRUSTER_PROMPT.format(
        problem=problem, solutions=listed, labels=" or ".join(f"'{label}'" for label in labels)
    )
