"""gsm_symbolic problems with a python program derived from their own symbolic form.

reasoning-gym writes each GSM-Symbolic template as a generator whose inner function
`generate_from_variables(...)` is the template's symbolic form: its arguments are the
instance's variables and its body computes the answer from them (`answer_value`). The
program for an instance is that body, sliced back from the answer to the statements it
needs, after the instance's variable values (caught as the function is entered, with
`sys.setprofile`), ending in `print(answer)`. A template whose answer needs anything
but its variables, `math` and `Fraction` gets no program and is counted, never
guessed. The teacher runs the program on the real python tool server and keeps it only
when the printed number is the dataset's answer.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import random
import sys
import textwrap
from dataclasses import dataclass
from fractions import Fraction
from types import CodeType, FrameType
from typing import Any

from entrypoints.teacher.problems import Problem

DOMAIN = "math"  # AWL's layout for MATH-style problems: text ReAct with the python tool
DATASET = "gsm_symbolic"
TOOL = "write_and_run_code"
SYMBOLIC_FORM = "generate_from_variables"
IMPORTS = {"math": "import math", "Fraction": "from fractions import Fraction"}


@dataclass(frozen=True)
class Derived:
    program: str | None
    why: str | None  # why no program was derived


def problems(count: int, seed: int) -> tuple[list[Problem], dict[str, int]]:
    """`count` gsm_symbolic problems of reasoning-gym's `seed`, each with its program
    where one derives; counts of those without."""
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(DATASET, seed=seed, size=count)
    made: list[Problem] = []
    skipped: dict[str, int] = {}
    for index in range(count):
        row = dataset[index]
        template = f"{DATASET}/{dataset.task_indices[index]}"
        derived = derive(dataset, index)
        if derived.program is None:
            why = derived.why or "no program"
            skipped[why] = skipped.get(why, 0) + 1
            continue
        made.append(
            Problem(
                id=f"{DATASET}-{seed}-{index}",
                domain=DOMAIN,
                template=template,
                form="open",
                split="train",
                seed=seed,
                question=row["question"],
                options=None,
                reference=str(row["answer"]),
                answer_type="number",
                tool=TOOL,
                arguments={"code": derived.program},
                value=row["metadata"].get("answer_value", row["answer"]),
            )
        )
    return made, skipped


def derive(dataset: Any, index: int) -> Derived:
    """The program of one instance of a reasoning-gym gsm_symbolic dataset."""
    generator = dataset.generators[dataset.task_indices[index]]
    caught: dict[str, Any] = {}

    def entered(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code.co_name == SYMBOLIC_FORM and "code" not in caught:
            code = frame.f_code
            names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
            caught["code"], caught["variables"] = code, {n: frame.f_locals[n] for n in names}

    previous = sys.getprofile()
    sys.setprofile(entered)
    try:
        # the dataset's own draw for this index (GSMSymbolicDataset.__getitem__)
        generator(random.Random(dataset.seed + index), dataset.config.difficulty)
    finally:
        sys.setprofile(previous)
    if "code" not in caught:
        return Derived(None, f"template has no {SYMBOLIC_FORM}")
    return program_of(caught["code"], caught["variables"])


def program_of(code: CodeType, variables: dict[str, Any]) -> Derived:
    try:
        function = ast.parse(textwrap.dedent(inspect.getsource(code))).body[0]
    except (OSError, SyntaxError, IndexError):
        return Derived(None, "symbolic form unreadable")
    if not isinstance(function, ast.FunctionDef):
        return Derived(None, "symbolic form unreadable")
    answer = _answer_expression(function)
    if answer is None:
        return Derived(None, "no answer_value in the symbolic form")
    body = [s for s in function.body if not isinstance(s, ast.Return | ast.Expr)]
    needed = _loads(answer)
    kept: list[ast.stmt] = []
    for statement in reversed(body):
        if _stores(statement) & needed:
            kept.insert(0, statement)
            needed |= _loads(statement)
    assigned = set().union(*(_stores(s) for s in kept)) if kept else set()
    free = needed - assigned - set(variables) - set(dir(builtins))
    if free - set(IMPORTS):
        return Derived(None, "answer needs helpers beyond math and Fraction")
    given = {name: value for name, value in variables.items() if name in needed}
    if not all(_literal(value) for value in given.values()):
        return Derived(None, "a variable is not a plain value")
    if any(isinstance(v, Fraction) for v in given.values()):
        free.add("Fraction")
    lines = [IMPORTS[name] for name in sorted(free & set(IMPORTS))]
    lines += [f"{name} = {value!r}" for name, value in given.items()]
    lines += [ast.unparse(statement) for statement in kept]
    lines.append(f"answer = {ast.unparse(answer)}")
    lines.append("print(answer)")
    return Derived("\n".join(lines) + "\n", None)


def _literal(value: Any) -> bool:
    """A value whose repr is Python that rebuilds it."""
    if isinstance(value, bool | int | float | str | Fraction):
        return True
    if isinstance(value, tuple | list):
        return all(_literal(v) for v in value)
    return False


def _answer_expression(function: ast.FunctionDef) -> ast.expr | None:
    """The `answer_value` of the returned dict (or the `answer`, unwrapped from
    `format_number`)."""
    returned = [s.value for s in function.body if isinstance(s, ast.Return)]
    if not returned or not isinstance(returned[-1], ast.Dict):
        return None
    entries = {
        key.value: value
        for key, value in zip(returned[-1].keys, returned[-1].values, strict=True)
        if isinstance(key, ast.Constant)
    }
    answer = entries.get("answer_value") or entries.get("answer")
    if isinstance(answer, ast.Call) and getattr(answer.func, "id", "") == "format_number":
        answer = answer.args[0] if answer.args else None
    return answer


def _loads(node: ast.AST) -> set[str]:
    """Names read; `x += 1` reads x too."""
    loads = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            loads.add(n.id)
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            loads.add(n.target.id)
    return loads


def _stores(node: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
