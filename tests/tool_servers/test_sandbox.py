"""Adversarial suite for the `python` tool server, over real HTTP to a real
`sciserve tool-server python` process.

Every case is checked against the same invariants, whatever the status:
- a secret file's content never appears in the output (no reads);
- a marker file is never created (no writes);
- a listening socket on the host never gets a connection (no network);
- the server is healthy afterwards, and a clean run right after shows no leftovers.
Cases marked `escape` used to reach the real builtins through sympy's string parser;
that route is closed now (`tool_servers/sandbox/eval_routes.py`), so they end at the
inner layer. The OS layer is attacked on its own, with raw Python in the child, in
`test_sandbox_isolation.py`.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SECRET = f"sciserve-secret-{uuid.uuid4().hex}"
ANY = None


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("sandbox-canary")
    os.chmod(folder, 0o777)
    secret = folder / "secret.txt"
    secret.write_text(SECRET)
    os.chmod(secret, 0o644)  # readable even by `nobody`: the sandbox must still not read it
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    yield {
        "secret": secret,
        "marker": folder / "escaped.txt",
        "listener": listener,
        "port": listener.getsockname()[1],
        "folder": folder,
    }
    listener.close()


def _escape(expression: str) -> str:
    """Code that evaluates `expression` with the real builtins via sympy's parser."""
    return f"import sympy\nprint(sympy.sympify({expression!r}))"


CASES: list[tuple[str, str, set[str] | None]] = [
    # --- files ---
    ("open-builtin", "print(open('{secret}').read())", {"error"}),
    ("io-open", "import io\nprint(io.open('{secret}').read())", {"error"}),
    ("pathlib", "import pathlib\nprint(pathlib.Path('{secret}').read_text())", {"error"}),
    ("numpy-load", "import numpy\nprint(numpy.load('{secret}'))", {"error"}),
    ("numpy-loadtxt", "import numpy\nprint(numpy.loadtxt('{secret}', dtype=str))", {"error"}),
    ("numpy-fromfile", "import numpy\nprint(numpy.fromfile('{secret}', dtype='u1'))", {"error"}),
    ("numpy-genfromtxt", "import numpy\nprint(numpy.genfromtxt('{secret}', dtype=str))", {"error"}),
    ("numpy-save", "import numpy\nnumpy.save('{marker}', numpy.ones(3))", {"error"}),
    ("numpy-savetxt", "import numpy\nnumpy.savetxt('{marker}', numpy.ones(3))", {"error"}),
    ("scipy-io", "import scipy.io\nprint(scipy.io.loadmat('{secret}'))", {"error"}),
    ("escape-read", _escape("__import__('builtins').open('{secret}').read()"), {"error"}),
    ("escape-write", _escape("__import__('builtins').open('{marker}', 'w').write('x')"), {"error"}),
    ("escape-os-open", _escape("__import__('os').open('{marker}', 65)"), {"error"}),
    (
        "parse-expr-read",
        "from sympy.parsing.sympy_parser import parse_expr\n"
        "print(parse_expr(\"open('{secret}').read()\"))",
        {"error"},
    ),
    # --- imports ---
    ("import-os", "import os\nprint(os.listdir('/'))", {"error"}),
    ("import-subprocess", "import subprocess\nsubprocess.run(['id'])", {"error"}),
    ("import-socket", "import socket", {"error"}),
    ("import-ctypes", "import ctypes", {"error"}),
    ("import-sys", "import sys\nprint(sys.modules)", {"error"}),
    ("import-importlib", "import importlib\nimportlib.import_module('os')", {"error"}),
    ("dunder-import", "__import__('os')", {"error"}),
    ("numpy-ctypeslib-attr", "import numpy\nprint(numpy.ctypeslib)", {"error"}),
    ("numpy-ctypeslib-from", "from numpy import ctypeslib", {"error"}),
    ("numpy-f2py", "import numpy.f2py", {"error"}),
    ("numpy-testing", "import numpy\nnumpy.testing", {"error"}),
    # --- __subclasses__ walks ---
    ("subclasses-walk", "print(().__class__.__bases__[0].__subclasses__())", {"error"}),
    ("getattr-class", "print(getattr((), '__class__'))", {"error"}),
    ("type-mro", "print(type(()).mro())", {"error"}),
    # --- format-string attribute access ---
    ("format-attr", "print('{{0.__class__.__mro__}}'.format(1))", {"error"}),
    ("format-map-attr", "print('{{x.__class__}}'.format_map({{'x': 1}}))", {"error"}),
    (
        "string-formatter",
        "import string\nprint(string.Formatter().format('{{0.__class__}}', 1))",
        {"error"},
    ),
    ("fstring-dunder", "print(f'{{(1).__class__}}')", {"error"}),
    # --- try/except* (RestrictedPython CVE class) ---
    (
        "try-except-star",
        "try:\n    raise ValueError(1)\nexcept* ValueError as e:\n    print(e)",
        {"error"},
    ),
    # --- guard override through positional-only / keyword-only parameters ---
    ("posonly-guard", "def f(_getattr_=None, /):\n    return 1\nprint(f())", {"error"}),
    ("posonly-lambda", "f = lambda _getiter_, /: 1\nprint(f(1))", {"error"}),
    ("kwonly-guard", "def f(*, _write_=None):\n    return 1\nprint(f())", {"error"}),
    # --- generator, coroutine and frame objects ---
    ("gi-frame", "g = (i for i in [1])\nprint(g.gi_frame.f_back.f_globals)", {"error"}),
    ("getattr-gi-frame", "g = (i for i in [1])\nprint(getattr(g, 'gi_frame'))", {"error"}),
    ("gi-code", "def gen():\n    yield 1\nprint(gen().gi_code)", {"error"}),
    (
        "traceback-frame",
        "try:\n    1/0\nexcept Exception as e:\n    print(e.__traceback__)",
        {"error"},
    ),
    # --- resource bombs ---
    ("infinite-loop", "while True:\n    pass", {"timeout"}),
    ("memory-bomb", "x = 'x' * 10**10", {"killed"}),
    ("numpy-memory-bomb", "import numpy\nx = numpy.ones((10**5, 10**5))", {"killed"}),
    ("list-memory-bomb", "x = [0] * (10**10)", {"killed"}),
    ("fork-bomb", _escape("[__import__('os').fork() for _ in range(100)]"), {"error"}),
    ("system-spawn", _escape("__import__('os').system('touch {marker}')"), ANY),
    ("recursion-bomb", "def f(n):\n    return f(n + 1)\nf(0)", {"error"}),
    ("huge-output", "while True:\n    print('x' * 1000)", {"killed"}),
    ("huge-single-output", "print('y' * 10**7)", {"killed"}),
    # --- signals, limits and builtins ---
    (
        "ignore-sigxcpu",
        _escape("__import__('signal').signal(24, __import__('signal').SIG_IGN)")
        + "\nwhile True:\n    pass",
        {"error"},  # the escape is refused before the loop; raw: test_sandbox_isolation
    ),
    ("kill-parent", _escape("__import__('os').kill(__import__('os').getppid(), 9)"), {"error"}),
    ("raise-rlimit", _escape("__import__('resource').setrlimit(0, (-1, -1))"), {"error"}),
    ("builtins-dict", "__builtins__['len'] = None", {"error"}),
    ("escape-builtins", _escape("setattr(__import__('builtins'), 'len', None)"), ANY),
    ("module-attr-write", "import math\nmath.pi = 3", {"error"}),
    ("system-exit", "raise SystemExit(3)", {"error"}),
    # --- network ---
    (
        "escape-socket",
        _escape("__import__('socket').create_connection(('127.0.0.1', {port}))"),
        {"error"},
    ),
    ("urllib", "import urllib.request", {"error"}),
]


def _invoke(url: str, code: str) -> dict[str, object]:
    response = httpx.post(
        f"{url}/invoke",
        json={"tool": "write_and_run_code", "arguments": {"thought": "test", "code": code}},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()["result"]
    return result


def test_suite_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("name", "template", "statuses"), CASES, ids=[c[0] for c in CASES])
def test_adversarial_case_does_not_escape(
    tool_servers: dict[str, str],
    canary: dict[str, object],
    name: str,
    template: str,
    statuses: set[str] | None,
) -> None:
    url = tool_servers["python"]
    code = template.format(secret=canary["secret"], marker=canary["marker"], port=canary["port"])
    result = _invoke(url, code)
    if statuses is not None:
        assert result["status"] in statuses, f"{name}: {result}"
    output = f"{result['stdout']}{result['stderr']}"
    assert SECRET not in output
    assert not Path(str(canary["marker"])).exists(), f"{name} wrote a file"
    listener = canary["listener"]
    assert isinstance(listener, socket.socket)
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    clean = _invoke(
        url,
        "import math\ntry:\n    leftover = LEAK\nexcept NameError:\n    leftover = None\n"
        "print(math.pi, len([1, 2]), leftover)\nLEAK = 1",
    )
    assert clean == {"stdout": f"{3.141592653589793} 2 None\n", "stderr": "", "status": "ok"}


def test_honest_code_runs(tool_servers: dict[str, str]) -> None:
    """The sandbox must still do its job: numpy, scipy and sympy work."""
    code = (
        "import numpy as np\nimport sympy as sp\nfrom scipy.integrate import quad\n"
        "x = sp.Symbol('x')\nprint(sp.integrate(x**2, (x, 0, 3)))\n"
        "print(round(quad(np.sin, 0, np.pi)[0], 6))\n"
        "print(np.linalg.solve([[2, 0], [0, 4]], [2, 8]))"
    )
    result = _invoke(tool_servers["python"], code)
    assert result == {"stdout": "9\n2.0\n[1. 2.]\n", "stderr": "", "status": "ok"}


def test_kills_are_counted(tool_servers: dict[str, str]) -> None:
    _invoke(tool_servers["python"], "print('z' * 10**7)")
    metrics = httpx.get(f"{tool_servers['python']}/metrics", timeout=10).text
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith('sciserve_sandbox_kills_total{reason="output"}')
    )
    assert float(line.split()[-1]) >= 1
    assert 'sciserve_tool_calls_total{outcome="ok",tool="write_and_run_code"}' in metrics
