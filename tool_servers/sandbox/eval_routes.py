"""The allowed libraries' own ways of running strings as Python, closed.

RestrictedPython checks the code the model writes, but some functions of the allowed
libraries compile or evaluate strings themselves, with the real builtins:
- sympy's parser: `sympify`, `S` and `parse_expr` of a string evaluate it, and so
  does every sympy function given a string (`sympy.sin("...")` sympifies it);
- sympy's `lambdify` runs Python source printed from its arguments: a string
  expression goes in verbatim, and so does the name of any symbol or function
  (`Symbol("eval")`), also when `nsolve` or another function lambdifies for you;
- mpmath's `identify(x, ["..."])` evaluates its constants;
- sympy's `external.import_module` and `utilities.source.get_class`, numpy's
  `add_newdoc` and `info` import a module by name, and `init_session` starts an
  interpreter.
The first three keep working for honest input: the string is compiled by
RestrictedPython and evaluated with the guarded builtins and attribute access, as the
user's own code is, and lambdify's printed source is checked and its attribute access
guarded. The rest are refused by identity (`policy.refuse`), with a message that says so.

Each route is closed where the library evaluates, not where the user calls it: the
builtin (`eval`, `compile`, `exec`) is shadowed in that library module's globals, so
every way of reaching it goes through the check. `close_eval_routes()` runs once in
the zygote, before the forker starts; every child inherits it.

This is the second wall: the boundary is the OS layer (`child.py`).
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
import types
from typing import Any, Literal

from tool_servers.sandbox import policy

# Builtins that printed code may reach (`builtins.sum` in numpy's printing of `Sum`):
# functions of their arguments only, nothing that reaches attributes, names or files.
PURE_BUILTINS = frozenset(
    {
        "abs",
        "all",
        "any",
        "bool",
        "complex",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "frozenset",
        "int",
        "isinstance",
        "len",
        "list",
        "map",
        "max",
        "min",
        "pow",
        "range",
        "reversed",
        "round",
        "set",
        "slice",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
    }
)
BUILTIN_IDS = frozenset(id(value) for value in vars(builtins).values())
# Names lambdify itself prints: its function and the dummies standing for arguments.
GENERATED_NAME = re.compile(r"_lambdifygenerated|_Dummy_\d+")
IMPORT_LINE = re.compile(r"from ([\w.]+) import (\w+)")
FORBIDDEN_STATEMENTS = (
    ast.Import,
    ast.ImportFrom,
    ast.Global,
    ast.Nonlocal,
    ast.ClassDef,
    ast.AsyncFunctionDef,
    ast.Await,
    ast.Delete,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.TryStar,
)
GUARD = "_sandbox_getattr_"


class RefusedInSandbox(ValueError):
    """A library was asked to run something the sandbox does not run."""


class CheckedCode:
    """Code RestrictedPython compiled: the only code the shadowed `eval` runs."""

    __slots__ = ("code",)

    def __init__(self, code: types.CodeType):
        self.code = code


def checked_compile(
    source: str | ast.Expression,
    filename: str = "<string>",
    mode: Literal["exec", "eval"] = "eval",
    *_: Any,
) -> CheckedCode:
    """`compile` for a library's strings: RestrictedPython's, as for user code."""
    try:
        return CheckedCode(policy.compile_checked(source, filename, mode))
    except SyntaxError as exc:
        errors = exc.args[0] if exc.args else exc
        if isinstance(errors, tuple | list):
            errors = "; ".join(str(error) for error in errors)
        raise SyntaxError(f"the sandbox does not evaluate this string: {errors}") from None


def checked_eval(
    code: str | CheckedCode, globals: dict[str, Any] | None = None, locals: Any = None
) -> Any:
    """`eval` for a library's strings: compiled by RestrictedPython and run with the
    guarded builtins and attribute access. Of the names the library passes, real
    builtins (sympy passes `eval`, `getattr`, `__import__` among them) give way to the
    guarded ones, and values the policy refuses are left out."""
    if isinstance(code, str):
        code = checked_compile(code)
    if not isinstance(code, CheckedCode):
        raise RefusedInSandbox("the sandbox evaluates only code it has checked")
    namespace = {name: value for name, value in (globals or {}).items() if _passes(value)}
    namespace.update(policy.restricted_namespace())
    if locals is not None and any(str(name).startswith("_") for name in locals):
        raise RefusedInSandbox('names starting with "_" cannot be passed to the parser')
    return eval(code.code, namespace, namespace if locals is None else locals)


def _passes(value: Any) -> bool:
    if isinstance(value, types.BuiltinFunctionType | type) and id(value) in BUILTIN_IDS:
        return False
    return policy.refusal(value) is None


# --- lambdify ---------------------------------------------------------------------

# Code lambdify compiled through `printed_compile`, waiting for its `exec`: id -> (code,
# the names it reads).
_PRINTED: dict[int, tuple[types.CodeType, frozenset[str]]] = {}
_IMPORT_COMMANDS: frozenset[str] = frozenset()


def printed_compile(source: str, filename: str, mode: str, *_: Any) -> types.CodeType:
    """`compile` for lambdify's printed source: no statement beyond what lambdify
    prints, no private name, and every attribute read through the policy's guard."""
    tree = ast.parse(source, filename, mode)
    names = _check_printed(tree)
    tree = ast.fix_missing_locations(_GuardAttributes().visit(tree))
    code = builtins.compile(tree, filename, mode)
    _PRINTED[id(code)] = (code, names)
    return code


def printed_exec(code: str | types.CodeType, globals: Any = None, locals: Any = None) -> None:
    """`exec` for lambdify: its namespace imports, or the printed code it compiled with
    `printed_compile`, once each global name the code reads is one the policy allows."""
    if isinstance(code, str):
        _check_import(code)
        builtins.exec(code, globals, locals)
        return
    entry = _PRINTED.pop(id(code), None)
    if entry is None or entry[0] is not code:
        raise RefusedInSandbox("lambdify runs only the code it printed in the sandbox")
    namespace = globals if globals is not None else {}
    for name in entry[1]:
        _check_global(name, namespace)
    namespace[GUARD] = _printed_getattr
    builtins.exec(code, namespace, locals)


def _check_printed(tree: ast.AST) -> frozenset[str]:
    bases = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, FORBIDDEN_STATEMENTS):
            raise RefusedInSandbox(
                f"lambdify printed a {type(node).__name__} statement, which the sandbox "
                "does not run"
            )
        if isinstance(node, ast.Name):
            _check_printed_name(node.id)
            if node.id == "builtins" and id(node) not in bases:
                raise RefusedInSandbox('lambdify: "builtins" is not available in the sandbox')
            names.add(node.id)
        elif isinstance(node, ast.arg):
            _check_printed_name(node.arg)
        elif isinstance(node, ast.FunctionDef):
            _check_printed_name(node.name)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise RefusedInSandbox(f'lambdify: "{node.attr}" starts with "_", so it is private')
    return frozenset(names)


def _check_printed_name(name: str) -> None:
    if name.startswith("_") and not GENERATED_NAME.fullmatch(name):
        raise RefusedInSandbox(
            f'lambdify: "{name}" is an invalid name in the sandbox because it starts with "_"'
        )


def _check_global(name: str, namespace: dict[str, Any]) -> None:
    """A name the printed code reads: from lambdify's namespace (numpy's, math's, ...),
    else a builtin, else one of the function's own (arguments, cse variables)."""
    if name == "builtins" or GENERATED_NAME.fullmatch(name):
        return
    if name in namespace:
        value = namespace[name]
    elif name in vars(builtins):
        value = vars(builtins)[name]
    else:
        return
    if id(value) in BUILTIN_IDS and isinstance(value, types.BuiltinFunctionType | type):
        if name not in PURE_BUILTINS:
            raise RefusedInSandbox(f'lambdify: "{name}" is not available in the sandbox')
        return
    why = policy.refusal(value)
    if why is not None:
        raise RefusedInSandbox(f"lambdify: {why}")


def _check_import(line: str) -> None:
    """lambdify's own namespace imports, and a printer's `from MODULE import NAME` of
    an allowed module."""
    if line in _IMPORT_COMMANDS:
        return
    match = IMPORT_LINE.fullmatch(line)
    if (
        match is None
        or not policy.module_name_allowed(match[1])
        or match[2].startswith("_")
        or match[2] in policy.DENIED_ATTRIBUTES
    ):
        raise RefusedInSandbox(f"lambdify: the sandbox does not run {line!r}")


def _printed_getattr(obj: Any, name: str) -> Any:
    if obj is builtins:
        if name not in PURE_BUILTINS:
            raise AttributeError(f'"builtins.{name}" is not available in the sandbox')
        return getattr(builtins, name)
    return policy.guarded_getattr(obj, name)


class _GuardAttributes(ast.NodeTransformer):
    """`a.b` becomes `_sandbox_getattr_(a, "b")`, as RestrictedPython does for user code."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not isinstance(node.ctx, ast.Load):
            raise RefusedInSandbox("lambdify printed an attribute assignment")
        return ast.copy_location(
            ast.Call(
                func=ast.Name(id=GUARD, ctx=ast.Load()),
                args=[self.visit(node.value), ast.Constant(node.attr)],
                keywords=[],
            ),
            node,
        )


# --- installing -------------------------------------------------------------------


def close_eval_routes() -> None:
    """Shadow the libraries' `eval`/`compile`/`exec` and refuse the import helpers;
    then check that honest use still works (and warm the new paths up)."""
    global _IMPORT_COMMANDS

    import mpmath
    import mpmath.identification
    import numpy
    import sympy
    import sympy.external
    import sympy.external.importtools
    import sympy.parsing.sympy_parser
    import sympy.utilities.lambdify
    import sympy.utilities.source

    # By sys.modules: `sympy.utilities.lambdify` is also the name of the function.
    parser = vars(sys.modules["sympy.parsing.sympy_parser"])
    parser["eval"], parser["compile"] = checked_eval, checked_compile
    vars(sys.modules["mpmath.identification"])["eval"] = checked_eval
    printing = vars(sys.modules["sympy.utilities.lambdify"])
    printing["compile"], printing["exec"] = printed_compile, printed_exec
    _IMPORT_COMMANDS = frozenset(
        command for *_, commands in printing["MODULES"].values() for command in commands
    )

    imports = "imports any module by name, which the sandbox does not allow"
    for refused, why in (
        (sympy.external.import_module, imports),
        (sympy.external.importtools.import_module, imports),
        (sympy.utilities.source.get_class, imports),
        (sympy.utilities.source.get_mod_func, imports),
        (numpy.lib.add_newdoc, imports),
        (numpy.info, imports),
        (sympy.init_session, "starts an interactive interpreter"),
        (checked_eval, "is the sandbox's own"),
        (checked_compile, "is the sandbox's own"),
        (printed_compile, "is the sandbox's own"),
        (printed_exec, "is the sandbox's own"),
    ):
        name = f"{getattr(refused, '__module__', '')}.{getattr(refused, '__qualname__', '')}"
        policy.refuse(refused, f'"{name.lstrip(".")}" {why}')

    x = sympy.Symbol("x")
    sympy.sympify("x**2 + 1")
    sympy.parse_expr("2*x", evaluate=False)
    for module in ("math", "cmath", "mpmath", "numpy", "scipy", "sympy"):
        sympy.lambdify(x, sympy.sin(x) + sympy.Sum(x, (x, 0, 2)).doit(), module)(0.5)
    mpmath.identify(0.5, ["pi"])
