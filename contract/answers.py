"""Answer extraction and correctness (DESIGN §4, "Answer accuracy").

Models end their solutions in many ways: `\\boxed{72}`, "the answer is (B)",
"**Answer:** $1,234 dollars". Extraction finds the final answer; checking compares it
with a reference: letters exactly, numbers symmetrically as AWL's
`math.isclose(rel_tol=0.05)` (the tolerance is the dataset's: exact for integer-answer
sets such as gsm_symbolic), and expressions through math-verify.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Literal

from math_verify import parse, verify

log = logging.getLogger(__name__)
# math-verify warns on every call that its timeouts are off; we bound time per job.
logging.getLogger("math_verify").setLevel(logging.ERROR)

ResolvedType = Literal["number", "choice", "expression", "text"]
RELATIVE_TOLERANCE = 0.05  # AWL/DESIGN §4: math.isclose(rel_tol=0.05), the default

_ANSWER_IS = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:)\s*:?\s*(.+)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")
_FRACTION = re.compile(r"^\s*(-?)\\[dt]?frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}")
_PLAIN_FRACTION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)(?!\d|\.\d)")
_LETTER = re.compile(r"^[\s(\[*{$]*([A-Z])(?![A-Za-z])")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for index in range(brace, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : index].strip()
    return None


def final_answer_span(text: str) -> str:
    """The part of an output that holds its final answer: boxed, then "the answer is",
    then the last non-empty line."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        span = matches[-1].group(1).strip()
        inner = last_boxed(span)
        return inner if inner is not None else span.split("\n")[0].strip()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def parse_number(text: str) -> float | None:
    """First number in a span, with thousands separators, units, `$`, `%` and simple
    fractions (`\\frac{3}{4}`, `3/4`) handled."""
    cleaned = text.replace("\\!", "").replace("{,}", ",").replace("\\,", "")
    cleaned = cleaned.replace("$", "").replace("\\%", "%").strip()
    for pattern in (_FRACTION, _PLAIN_FRACTION):
        match = pattern.match(cleaned)
        if match:
            groups = match.groups()
            sign = -1.0 if len(groups) == 3 and groups[0] == "-" else 1.0
            numerator, denominator = float(groups[-2]), float(groups[-1])
            if denominator != 0:
                return sign * numerator / denominator
    match = _NUMBER.search(cleaned)
    if match is None:
        return None
    try:
        value = float(match.group(0).replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def format_number(value: float) -> str:
    """Canonical string: integers without a decimal point, others to 10 significant digits."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def parse_choice(text: str, options: list[str] | None) -> str | None:
    """A letter from "(B)", "B.", "**C**" or the text of an option."""
    count = len(options) if options else 26
    valid = {chr(ord("A") + i) for i in range(count)}
    match = _LETTER.match(text.replace("\\textbf", "").replace("\\text", "").strip())
    if match and match.group(1) in valid:
        return match.group(1)
    if options:
        lowered = text.strip().lower().rstrip(".")
        for index, option in enumerate(options):
            if option.strip().lower().rstrip(".") == lowered:
                return chr(ord("A") + index)
    return None


def resolve_type(
    answer_type: str, options: list[str] | None, reference: str | None = None
) -> ResolvedType:
    """`auto` becomes choice with options, number when the reference is a number,
    and expression otherwise."""
    if answer_type != "auto":
        return answer_type  # type: ignore[return-value]
    if options:
        return "choice"
    if (
        reference is not None
        and parse_number(reference) is not None
        and _is_plain_number(reference)
    ):
        return "number"
    return "number" if reference is None else "expression"


def _is_plain_number(text: str) -> bool:
    return bool(re.fullmatch(r"\s*\$?-?[\d,]*\.?\d+\s*%?\s*[A-Za-z/ ]*\s*", text))


def extract_answer(
    text: str, answer_type: ResolvedType, options: list[str] | None = None
) -> str | None:
    """Normalized final answer of a model output, or None when there is none."""
    span = final_answer_span(text)
    if answer_type == "choice":
        letter = parse_choice(span, options)
        if letter is None:
            # "... so the correct option is C" with no anchor: take the last valid letter.
            letters = re.findall(r"\b([A-Z])\b", span) or re.findall(r"\(([A-Z])\)", text)
            count = len(options) if options else 26
            letters = [x for x in letters if ord(x) - ord("A") < count]
            letter = letters[-1] if letters else None
        return letter
    if answer_type == "number":
        value = parse_number(span)
        if value is None:
            numbers = _NUMBER.findall(text)
            value = parse_number(numbers[-1]) if numbers else None
        return format_number(value) if value is not None else None
    span = span.strip().strip("$").strip().rstrip(".")
    return span or None


def _math_verify(reference: str, answer: str) -> bool:
    # Timeouts off: math-verify's timeouts use SIGALRM, which only works in the main
    # thread; the worker bounds the whole job's time instead.
    gold = parse(f"${reference}$", parsing_timeout=None)  # type: ignore[arg-type]
    target = parse(f"${answer}$", parsing_timeout=None)  # type: ignore[arg-type]
    if not gold or not target:
        return False
    return bool(verify(gold, target, timeout_seconds=None))


def grading_rule(answer_type: ResolvedType, rel_tol: float = RELATIVE_TOLERANCE) -> str:
    """The rule `is_correct` applies, in words, for reports to name."""
    if answer_type == "number":
        if rel_tol == 0:
            return "number: exact"
        return f"number: math.isclose(rel_tol={rel_tol:g})"
    return {
        "choice": "choice: same letter",
        "expression": "expression: math-verify",
        "text": "text: same text, case-insensitive",
    }[answer_type]


def is_correct(
    answer: str | None,
    reference: str,
    answer_type: ResolvedType,
    options: list[str] | None = None,
    rel_tol: float = RELATIVE_TOLERANCE,
) -> bool:
    """Compare a normalized answer with a reference answer. Numbers compare as AWL's
    `math.isclose(answer, reference, rel_tol=rel_tol)`: symmetric, so 105.2 is right
    for 100 exactly when 100 is right for 105.2; `rel_tol=0` is an exact match."""
    if answer is None:
        return False
    if answer_type == "choice":
        expected = parse_choice(reference.strip().upper(), options)
        return expected is not None and answer.strip().upper() == expected
    if answer_type == "number":
        got, want = parse_number(answer), parse_number(reference)
        if got is None or want is None:
            return False
        return math.isclose(got, want, rel_tol=rel_tol)
    if answer_type == "text":
        return answer.strip().lower().rstrip(".") == reference.strip().lower().rstrip(".")
    try:
        return _math_verify(reference, answer)
    except Exception:  # math-verify raises on some malformed LaTeX; that is "not equal"
        log.debug("math-verify failed on %r vs %r", answer, reference, exc_info=True)
        return False


def equivalent(first: str, second: str, answer_type: ResolvedType) -> bool:
    """Whether two normalized answers are the same answer, for grouping votes:
    numbers and letters are already canonical; expressions go through math-verify, so
    `\\frac{1}{2}` and `0.5` or `x+1` and `1+x` count as one."""
    if first == second:
        return True
    if answer_type in ("number", "choice"):
        return False
    if answer_type == "text":
        return first.strip().lower().rstrip(".") == second.strip().lower().rstrip(".")
    try:
        return _math_verify(first, second)
    except Exception:  # math-verify raises on some malformed LaTeX; that is "not equal"
        return False
