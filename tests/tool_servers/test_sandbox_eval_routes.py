"""The second wall: the allowed libraries' own ways of evaluating strings are closed
(`tool_servers/sandbox/eval_routes.py`), on the real pool and zygote, through
RestrictedPython as the server runs code.

Each escape was a way past RestrictedPython to the real builtins: `sympy.lambdify` of
a string read the server's environment and printed the admin key. Each must now end
in an error that says the sandbox refused it, with no secret anywhere, while the same
functions keep working on honest input, since the model uses them for real math.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tool_servers.test_sandbox_isolation import SECRETS, PoolThread
from tool_servers.sandbox.pool import SandboxPool

ENVIRON = "__import__('os').environ"
ESCAPES: list[tuple[str, str]] = [
    ("lambdify-string", f"import sympy\nprint(sympy.lambdify([], {ENVIRON!r})())"),
    ("lambdify-eval", "import sympy\nprint(sympy.lambdify([], \"eval('1')\")())"),
    (
        "lambdify-symbol-name",
        f"import sympy\nprint(sympy.lambdify([], sympy.Symbol({ENVIRON!r}))())",
    ),
    (
        "lambdify-function-name",
        "import sympy\nx = sympy.Symbol('x')\n"
        "print(sympy.lambdify([x], sympy.Function('open')(x))('/etc/hostname'))",
    ),
    ("lambdify-builtins", "import sympy\nprint(sympy.lambdify([], sympy.Symbol('builtins'))())"),
    (
        "nsolve-lambdifies",
        f"import sympy\nx = sympy.Symbol('x')\n"
        f"print(sympy.nsolve(x - sympy.Function({ENVIRON!r})(x), x, 1))",
    ),
    ("sympify", f"import sympy\nprint(sympy.sympify({ENVIRON!r}))"),
    ("S", f"import sympy\nprint(sympy.S({ENVIRON!r}))"),
    ("sympy-function-of-string", f"import sympy\nprint(sympy.sin({ENVIRON!r}))"),
    ("parse-expr", f"from sympy import parse_expr\nprint(parse_expr({ENVIRON!r}))"),
    (
        "parse-expr-unevaluated",
        f"from sympy.parsing.sympy_parser import parse_expr\n"
        f"print(parse_expr({ENVIRON!r}, evaluate=False))",
    ),
    ("parse-expr-getattr", "import sympy\nprint(sympy.parse_expr(\"getattr(1, '__class__')\"))"),
    ("parse-expr-eval", "import sympy\nprint(sympy.parse_expr(\"eval('1')\"))"),
    ("mpmath-identify", f"import mpmath\nprint(mpmath.identify(1, [{ENVIRON!r}]))"),
    ("import-module", "import sympy.external\nprint(sympy.external.import_module('os').environ)"),
    ("import-module-from", "from sympy.external import import_module\nprint(import_module('os'))"),
    ("get-class", "import sympy.utilities.source as s\nprint(s.get_class('os.getcwd')())"),
    ("numpy-add-newdoc", "import numpy\nnumpy.lib.add_newdoc('os', 'system', 'x')"),
    ("numpy-info", "import numpy\nnumpy.info('environ', toplevel='os')"),
    ("numpy-private-module", "import numpy.lib._utils_impl as u\nprint(u)"),
    ("numpy-testing", "import numpy\nprint(numpy.testing)"),
    ("numpy-f2py", "import numpy\nprint(numpy.f2py)"),
    ("numpy-ctypeslib", "import numpy\nprint(numpy.ctypeslib)"),
    ("pandas-style-eval", "import numpy\nprint(numpy.eval)"),
    ("the-sandbox-s-own-eval", "import sympy.parsing.sympy_parser as p\nprint(p.eval('1'))"),
]
# The policy's messages: its own, and RestrictedPython's for a private name.
REFUSALS = ("sandbox", "not allowed", 'starts with "_"')
HONEST: list[tuple[str, str, str]] = [
    ("sympify", "import sympy\nprint(sympy.sympify('x**2 + 2*x + 1').factor())", "(x + 1)**2"),
    ("S", "import sympy\nprint(sympy.S('1/3') + sympy.S.Half)", "5/6"),
    ("sympy-of-string", "import sympy\nprint(sympy.integrate('x**2', ('x', 0, 3)))", "9"),
    (
        "parse-expr",
        "from sympy.parsing.sympy_parser import parse_expr, standard_transformations, "
        "implicit_multiplication_application\n"
        "t = standard_transformations + (implicit_multiplication_application,)\n"
        "print(parse_expr('2x sin x', transformations=t), parse_expr('2+3', evaluate=False))",
        "2*x*sin(x) 2 + 3",
    ),
    (
        "lambdify",
        "import sympy, numpy\nx = sympy.Symbol('x')\n"
        "f = sympy.lambdify(x, sympy.Piecewise((x**2, x > 0), (0, True)), 'numpy')\n"
        "print(f(numpy.array([-1.0, 3.0])))",
        "[0. 9.]",
    ),
    (
        "lambdify-sum-and-cse",
        "import sympy\nx, k = sympy.symbols('x k')\n"
        "print(sympy.lambdify(x, sympy.Sum(x**k, (k, 0, 3)))(2), "
        "sympy.lambdify(x, sympy.sin(x)**2 + sympy.sin(x), cse=True)(0.0))",
        "15 0.0",
    ),
    ("lambdify-string", "import sympy\nprint(sympy.lambdify('x', 'x**2 + 1')(3))", "10"),
    (
        "lambdify-modules",
        "import sympy\nx = sympy.Symbol('x')\n"
        "print(round(sympy.lambdify(x, sympy.gamma(x), 'math')(5.0)), "
        "sympy.lambdify(x, sympy.zeta(x), 'mpmath')(2) > 1.6, "
        "round(float(sympy.lambdify(x, sympy.besselj(0, x), 'scipy')(0.0)), 3))",
        "24 True 1.0",
    ),
    (
        "nsolve",
        "import sympy\nx = sympy.Symbol('x')\nprint(sympy.nsolve(x**2 - 2, x, 1))",
        "1.41421356237310",
    ),
    (
        "mpmath-identify",
        "import mpmath\nprint(mpmath.identify(mpmath.pi / 2, ['pi']))",
        "((1/2)*pi)",
    ),
    (
        "numpy-scipy",
        "import numpy as np\nfrom scipy import integrate, optimize\n"
        "print(round(integrate.quad(np.exp, 0, 1)[0], 6), "
        "round(optimize.brentq(lambda v: v**3 - 2, 0, 2), 6), np.emath.sqrt(-4))",
        "1.718282 1.259921 2j",
    ),
]


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolThread]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        running = PoolThread(SandboxPool(warm=2))
    try:
        yield running
    finally:
        running.close()


@pytest.mark.parametrize(("name", "code"), ESCAPES, ids=[case[0] for case in ESCAPES])
def test_an_eval_route_is_refused(pool: PoolThread, name: str, code: str) -> None:
    result = pool.run(code)
    output = result.stdout + result.stderr
    assert not [secret for secret in SECRETS.values() if secret in output], name
    assert result.status == "error", result
    assert any(phrase in result.stderr for phrase in REFUSALS), result


@pytest.mark.parametrize(("name", "code", "expected"), HONEST, ids=[case[0] for case in HONEST])
def test_honest_use_of_the_same_functions_still_works(
    pool: PoolThread, name: str, code: str, expected: str
) -> None:
    result = pool.run(code)
    assert (result.status, result.stdout, result.stderr) == ("ok", expected + "\n", ""), result
