"""Answer extraction on realistic model outputs, and the correctness rules."""

from __future__ import annotations

import pytest

from contract.answers import extract_answer, is_correct, resolve_type

QWEN_NATALIA = """To find out how many clips Natalia sold altogether, we add April and May.

1. In April she sold 48 clips.
2. In May she sold half as many: \\( \\frac{48}{2} = 24 \\).

Total: \\( 48 + 24 = 72 \\).

Therefore, Natalia sold a total of \\(\\boxed{72}\\) clips in April and May."""

MONEY = """Weng earns $12 an hour, so 50 minutes earn 12 * 50/60 = 10 dollars.
Over the month that is 1,234 times ... so the answer is $1,234.50 dollars."""

CHOICE = """The heat flux is zero at both ends, so the mean temperature is conserved.
Comparing with the options, the answer is (C)."""

CHOICE_BOLD = "Let me check each option.\n\n**Answer: B**"

EXPR = "Integrating term by term gives \\boxed{\\frac{x^{3}}{3} + C}"

UNITS = "The ball falls for 1.43 s, so its speed is about 14.0 m/s.\nThe answer is 14.0 m/s"

NESTED = "So the result is \\boxed{\\dfrac{\\sqrt{2}}{2}}."


@pytest.mark.parametrize(
    ("text", "answer_type", "options", "expected"),
    [
        (QWEN_NATALIA, "number", None, "72"),
        (MONEY, "number", None, "1234.5"),
        (CHOICE, "choice", ["a", "b", "c", "d"], "C"),
        (CHOICE_BOLD, "choice", ["a", "b", "c", "d"], "B"),
        (EXPR, "expression", None, "\\frac{x^{3}}{3} + C"),
        (UNITS, "number", None, "14"),
        (NESTED, "expression", None, "\\dfrac{\\sqrt{2}}{2}"),
        ("We get 3/4 of the cake, the answer is 3/4.", "number", None, "0.75"),
        ("Total: 1,000,000 people.", "number", None, "1000000"),
        ("I cannot tell.", "number", None, None),
        ("The answer is Paris.", "choice", ["London", "Paris"], "B"),
    ],
)
def test_extract_answer(text, answer_type, options, expected) -> None:
    assert extract_answer(text, answer_type, options) == expected


@pytest.mark.parametrize(
    ("answer", "reference", "answer_type", "expected"),
    [
        ("72", "72", "number", True),
        ("75.5", "72", "number", True),  # within 5%
        ("75.7", "72", "number", True),  # 5.1% of 72, but within 5% of 75.7: symmetric
        ("75.8", "72", "number", False),  # 5.01% of 75.8
        ("-68.5", "-72", "number", True),
        ("0", "0", "number", True),
        ("0.001", "0", "number", False),
        ("1234.5", "1,234.50", "number", True),
        ("B", "B", "choice", True),
        ("B", "(b)", "choice", True),
        ("C", "B", "choice", False),
        ("\\frac{1}{2}", "0.5", "expression", True),
        ("(x+1)^2", "x^2+2x+1", "expression", True),
        ("x^2", "x^3", "expression", False),
        (None, "3", "number", False),
    ],
)
def test_is_correct(answer, reference, answer_type, expected) -> None:
    assert is_correct(answer, reference, answer_type) is expected


def test_auto_type_follows_options_and_reference() -> None:
    assert resolve_type("auto", ["x", "y"], "A") == "choice"
    assert resolve_type("auto", None, "72") == "number"
    assert resolve_type("auto", None, "\\frac{x}{2}") == "expression"
    assert resolve_type("expression", None, "72") == "expression"
