"""The inner layer of the Python sandbox: RestrictedPython and the guards it calls.

This layer keeps honest code on the rails and makes escapes hard, but it is not the
boundary (DESIGN §5): a library such as sympy can evaluate strings with the real
builtins. The boundary is the OS layer in `child.py`.
"""

from __future__ import annotations

import builtins
import operator
import types
from collections.abc import Callable
from typing import Any

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
# Submodule segments and attribute names that reach files, C pointers or compilers.
DENIED_SEGMENTS = frozenset({"ctypeslib", "f2py", "distutils", "testing", "_core"})
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
    }
)


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


def _module_allowed(module: types.ModuleType) -> bool:
    segments = module.__name__.split(".")
    return segments[0] in ALLOWED_MODULES and not DENIED_SEGMENTS.intersection(segments)


def guarded_getattr(obj: Any, name: str, default: Any = None) -> Any:
    """RestrictedPython's `safer_getattr` (no `_names`, no str.format, no frame
    attributes), plus: no denied names, and no stepping into a module outside the
    allow-list through an attribute (e.g. `numpy.ctypeslib`)."""
    if name in DENIED_ATTRIBUTES:
        raise AttributeError(f'"{name}" is not available in the sandbox')
    value = safer_getattr(obj, name, default)
    if isinstance(value, types.ModuleType) and not _module_allowed(value):
        raise AttributeError(f'module "{value.__name__}" is not available in the sandbox')
    return value


def guarded_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> types.ModuleType:
    if level != 0:
        raise ImportError("relative imports are not available in the sandbox")
    top = name.split(".")[0]
    if top not in ALLOWED_MODULES or DENIED_SEGMENTS.intersection(name.split(".")):
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

    safe = dict(safe_builtins)
    safe.update(limited_builtins)
    safe.update(utility_builtins)
    for name in (
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
    ):
        safe[name] = getattr(builtins, name)
    # RestrictedPython's `range` stops at 1000 elements, too few for numerical work;
    # memory is bounded by the OS layer instead.
    safe["range"] = builtins.range
    safe.update({"__import__": guarded_import, "getattr": guarded_getattr, "type": _type_of})
    return {
        "__builtins__": safe,
        "__name__": "sandbox",
        "__metaclass__": type,
        "_getattr_": guarded_getattr,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
        "_inplacevar_": _inplacevar,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_apply_": lambda f, *a, **k: f(*a, **k),
        "_print_": Print,
    }


def compile_user_code(source: str) -> types.CodeType:
    """Compile under RestrictedPython's policy; a SyntaxError lists every violation."""
    import warnings

    with warnings.catch_warnings():  # "prints but never reads 'printed'" is our design
        warnings.simplefilter("ignore", SyntaxWarning)
        return compile_restricted(source, filename="<sandbox>", mode="exec")  # type: ignore[no-any-return]
