"""Prompt texts. They are part of the contract: adapters are trained on them, so a
change here is a change of model behaviour and needs a version note."""

from __future__ import annotations

# AWL (arXiv 2411.00412), no-tool prompt for multiple choice, verbatim.
AWL_DIRECT_CHOICE = (
    "Please answer the following question. Your answer should end with 'the answer is A/B/C/D'."
)
# DESIGN §4: numeric and expression answers go in \boxed{} instead of a letter.
DIRECT_BOXED = (
    "Please answer the following question. Reason step by step, then give your final "
    "answer in \\boxed{}."
)


def format_options(options: list[str]) -> str:
    """Options as AWL lists them: one `A. text` per line."""
    return "\n".join(f"{chr(ord('A') + i)}. {option}" for i, option in enumerate(options))


def direct_user_prompt(problem: str, options: list[str] | None) -> str:
    """The user message for direct (no-tool) answering."""
    if options:
        return f"{AWL_DIRECT_CHOICE}\n\n{problem}\n\n{format_options(options)}"
    return f"{DIRECT_BOXED}\n\n{problem}"
