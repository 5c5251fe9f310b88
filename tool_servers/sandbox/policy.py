"""The inner layer of the Python sandbox: RestrictedPython and the guards it calls.

This layer keeps honest code on the rails and makes escapes hard, but it is not the
boundary (DESIGN §5): the boundary is the OS layer in `child.py`, which must hold with
arbitrary Python in the child. The routes by which the allowed libraries evaluate
strings with the real builtins (sympy's `sympify` and `lambdify`, mpmath's `identify`)
are closed in `eval_routes.py`, which runs them under this same policy; the functions
that import or evaluate by name are refused here, by identity (`refuse`).
"""

from __future__ import annotations

import ast
import builtins
import operator
import types
import warnings
from collections.abc import Callable
from typing import Any, Literal

from RestrictedPython import compile_restricted, limited_builtins, safe_builtins, utility_builtins
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

# Top-level modules user code may import. `operator` and `string` are left out on
# purpose: `operator.attrgetter` and `string.Formatter` reach attributes without
# passing through the attribute guard.
ALLOWED_MODULES = frozenset(
    {
        "math",
        "cmath",
        "numpy",
        "scipy",
        "sympy",
        "mpmath",
        "fractions",
        "statistics",
        "decimal",
        "itertools",
        "functools",
        "collections",
        "random",
        "re",
        "datetime",
        "heapq",
        "bisect",
        "json",
        "numbers",
    }
)
# Submodule segments and attribute names that reach files, C pointers or compilers
# (`numpy.testing` and `numpy.f2py` exec strings). Private modules (a segment starting
# with "_", e.g. `numpy._core`, `numpy.lib._utils_impl`) are refused as well.
DENIED_SEGMENTS = frozenset({"ctypeslib", "f2py", "distutils", "testing"})
DENIED_ATTRIBUTES = frozenset(
    {
        "ctypeslib",
        "ctypes",
        "f2py",
        "distutils",
        "memmap",
        "fromfile",
        "tofile",
        "load",
        "loadtxt",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "genfromtxt",
        "system",
        "popen",
        "autowrap",
        "ufuncify",
        "preview",
        "mro",
        # pandas' `eval` and `DataFrame.eval` evaluate strings. pandas is not importable
        # here (nor `DataFrame.query`, whose name scipy's `KDTree.query` shares).
        "eval",
    }
)
# Library functions refused by identity, with why: `refuse()` fills it in the zygote.
REFUSED: dict[int, tuple[object, str]] = {}
FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


class SandboxOutput:
    """A text sink with a byte cap. Going over the cap stops the run, so a print loop
    cannot fill the parent's memory."""

    def __init__(self, cap_bytes: int):
        self.cap = cap_bytes
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text.encode("utf-8", "replace"))
        if self.size > self.cap:
            raise OutputLimitExceeded(f"output exceeded {self.cap} bytes")
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)


class OutputLimitExceeded(Exception):
    """The run printed more than it may."""


def module_name_allowed(name: str) -> bool:
    segments = name.split(".")
    return (
        segments[0] in ALLOWED_MODULES
        and not DENIED_SEGMENTS.intersection(segments)
        and not any(segment.startswith("_") for segment in segments)
    )


def _module_allowed(module: types.ModuleType) -> bool:
    return module_name_allowed(module.__name__)


def _origin_allowed(function: Any) -> bool:
    """A function defined in an allowed module (or its C accelerator, `_heapq` for
    `heapq`, or a builtin): a library's attribute must not hand out, say, an `os`
    function it imported by name."""
    module = getattr(function, "__module__", None)
    if not isinstance(module, str):  # bound builtin methods have none
        return True
    segments = module.split(".")
    top = segments[0].lstrip("_")
    return (top in ALLOWED_MODULES or top == "builtins") and not DENIED_SEGMENTS.intersection(
        segments
    )


def refuse(value: object, why: str) -> None:
    """Refuse `value` wherever user code would get it by attribute or import."""
    REFUSED[id(value)] = (value, why)


def refusal(value: Any) -> str | None:
    """Why user code may not have `value`, or None if it may."""
    entry = REFUSED.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    if isinstance(value, types.MethodType):  # a refused function bound to its object
        entry = REFUSED.get(id(value.__func__))
        if entry is not None and entry[0] is value.__func__:
            return entry[1]
    if isinstance(value, types.ModuleType) and not _module_allowed(value):
        return f'module "{value.__name__}" is not available in the sandbox'
    if isinstance(value, FUNCTION_TYPES) and not _origin_allowed(value):
        return f'"{getattr(value, "__qualname__", value)}" is not available in the sandbox'
    return None


def guarded_getattr(obj: Any, name: str, default: Any = None) -> Any:
    """RestrictedPython's `safer_getattr` (no `_names`, no str.format, no frame
    attributes), plus: no denied names, nothing out of a module outside the allow-list
    (one a library function handed out), and no refused value (`refusal`: e.g.
    `numpy.ctypeslib`, `sympy.external.import_module`, an `os` function)."""
    if name in DENIED_ATTRIBUTES:
        raise AttributeError(f'"{name}" is not available in the sandbox')
    if isinstance(obj, types.ModuleType) and not _module_allowed(obj):
        raise AttributeError(f'module "{obj.__name__}" is not available in the sandbox')
    value = safer_getattr(obj, name, default)
    why = refusal(value)
    if why is not None:
        raise AttributeError(why)
    return value


def guarded_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> types.ModuleType:
    if level != 0:
        raise ImportError("relative imports are not available in the sandbox")
    if not module_name_allowed(name):
        allowed = ", ".join(sorted(ALLOWED_MODULES))
        raise ImportError(f'import of "{name}" is not allowed; allowed modules: {allowed}')
    module = builtins.__import__(name, globals, locals, fromlist, level)
    for item in fromlist or ():
        guarded_getattr(module, item)
    return module


def guarded_write(obj: Any) -> Any:
    """Item and attribute assignment is fine on data (arrays, lists, user objects), not
    on modules, classes or functions, whose change would alter library behaviour."""
    if isinstance(obj, types.ModuleType | type | types.FunctionType | types.BuiltinFunctionType):
        raise TypeError(f"cannot modify {type(obj).__name__} objects in the sandbox")
    return obj


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    return _INPLACE[op](x, y)


def _type_of(obj: Any) -> type:
    """One-argument `type()` only: the three-argument form builds classes."""
    return type(obj)


SAFE_BUILTIN_NAMES = (
    "sum",
    "min",
    "max",
    "enumerate",
    "map",
    "filter",
    "list",
    "dict",
    "set",
    "frozenset",
    "all",
    "any",
    "reversed",
    "iter",
    "next",
    "object",
    "NotImplemented",
    "Exception",
    "ArithmeticError",
    "ValueError",
)


def restricted_namespace() -> dict[str, Any]:
    """The builtins and guards RestrictedPython's compiled code calls: fresh for each
    run, and for each string a library evaluates (`eval_routes.py`)."""
    safe = dict(safe_builtins)
    safe.update(limited_builtins)
    safe.update(utility_builtins)
    for name in SAFE_BUILTIN_NAMES:
        safe[name] = getattr(builtins, name)
    # RestrictedPython's `range` stops at 1000 elements, too few for numerical work;
    # memory is bounded by the OS layer instead.
    safe["range"] = builtins.range
    safe.update({"__import__": guarded_import, "getattr": guarded_getattr, "type": _type_of})
    return {
        "__builtins__": safe,
        "__metaclass__": type,
        "_getattr_": guarded_getattr,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
        "_inplacevar_": _inplacevar,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_apply_": lambda f, *a, **k: f(*a, **k),
    }


def restricted_globals(output: SandboxOutput) -> dict[str, Any]:
    """Fresh globals for one run."""

    class Print:
        """RestrictedPython's print hook, writing to the capped output."""

        def __init__(self, _getattr_: Any = None):
            pass

        def _call_print(self, *objects: Any, **kwargs: Any) -> None:
            kwargs.pop("file", None)
            print(*objects, file=output, **kwargs)  # type: ignore[call-overload]

        def __call__(self) -> str:
            return output.getvalue()

    return {**restricted_namespace(), "__name__": "sandbox", "_print_": Print}


def compile_user_code(source: str) -> types.CodeType:
    """Compile under RestrictedPython's policy; a SyntaxError lists every violation."""
    return compile_checked(source, "<sandbox>", "exec")


def compile_checked(
    source: str | ast.Expression, filename: str, mode: Literal["exec", "eval"]
) -> types.CodeType:
    """Compile source or a parsed expression under RestrictedPython's policy."""
    with warnings.catch_warnings():  # "prints but never reads 'printed'" is our design
        warnings.simplefilter("ignore", SyntaxWarning)
        return compile_restricted(source, filename=filename, mode=mode)  # type: ignore[no-any-return]
