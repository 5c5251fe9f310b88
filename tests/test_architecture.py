"""The layers hold (`lint-imports`), and each import-linter contract can fail: for every
contract, one planted import in a copy of the tree breaks it. A contract that cannot
fail would guard nothing.

The import graph itself (grimp, the library under import-linter) has no circle between
modules and no import up the layer order; both checks are shown failing on a planted
import too.
"""

from __future__ import annotations

import graphlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# contract id -> (file that gets the planted import, the import that breaks the contract)
PLANTED = {
    "layers": ("app/solving.py", "import routers.solve"),  # the gateway under its routers
    "contract-bottom": ("contract/answers.py", "import adapters.registry"),
    "gateway-workers-tools": ("app/solving.py", "import workers.loop"),
    "routers-workers-tools": ("routers/health.py", "import tool_servers.registry"),
    "tools-contract-only": ("tool_servers/base.py", "import jobqueue.protocol"),
    "evaluation-over-http": ("evaluation/runner.py", "import app.solving"),
    "training-from-records": ("training/records.py", "import workers.traces"),
}


def _lint(tree: Path, contract: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"]
    if contract is not None:
        command += ["--contract", contract]
    return subprocess.run(
        command, cwd=tree, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
    )  # fmt: skip


def _copy_tree(target: Path) -> Path:
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


def test_every_contract_has_a_planted_violation() -> None:
    assert {c["id"] for c in CONFIG["contracts"]} == set(PLANTED)


@pytest.mark.parametrize("contract", sorted(PLANTED))
def test_a_planted_import_breaks_the_contract(contract: str, tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    path, statement = PLANTED[contract]
    module = tree / path
    module.write_text(module.read_text() + f"\n{statement}  # planted by the test\n")
    result = _lint(tree, contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


# --- the import graph: no circle, no import up the layer order ------------------------
# Every import statement of our packages, including those inside functions and under
# TYPE_CHECKING: a circle through a lazy import is still a circle in the design.
_GRAPH_SCRIPT = """
import json, sys, grimp
graph = grimp.build_graph(*sys.argv[1:], cache_dir=None)
print(json.dumps({m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}))
"""


def _import_graph(tree: Path) -> dict[str, list[str]]:
    """importer -> the modules of ours it imports, for the packages under `tree` (built in
    a fresh interpreter, so a copy of the tree is read rather than what this one imported)."""
    done = subprocess.run(
        [sys.executable, "-c", _GRAPH_SCRIPT, *CONFIG["root_packages"]],
        cwd=tree, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    graph: dict[str, list[str]] = json.loads(done.stdout)
    return graph


def _circle(graph: dict[str, list[str]]) -> list[str] | None:
    """One circle of imports (its modules in order, the first repeated at the end), or
    None when the graph is acyclic."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def _layer_of() -> dict[str, int]:
    """Top-level package -> its floor in the layers contract (0 is the top)."""
    (layers,) = (c["layers"] for c in CONFIG["contracts"] if c["id"] == "layers")
    return {
        package.strip(): floor
        for floor, layer in enumerate(layers)
        for package in re.split(r"[:|]", layer)
    }


def _upward_imports(graph: dict[str, list[str]]) -> list[str]:
    floor = _layer_of()
    return [
        f"{importer} -> {imported}"
        for importer, imports in graph.items()
        for imported in imports
        if floor[importer.split(".")[0]] > floor[imported.split(".")[0]]
    ]


def test_every_package_has_a_floor() -> None:
    assert set(_layer_of()) == set(CONFIG["root_packages"])


def test_the_import_graph_has_no_circle_and_no_upward_import() -> None:
    graph = _import_graph(ROOT)
    assert len(graph) > 100  # the whole tree was read, not an empty path
    assert _circle(graph) is None, " -> ".join(_circle(graph) or [])
    assert _upward_imports(graph) == []


def test_a_planted_circle_and_a_planted_upward_import_are_found(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    # contract.schemas imports contract.errors; the way back closes a circle.
    with (tree / "contract/errors.py").open("a") as module:
        module.write("\nimport contract.schemas  # planted by the test\n")
    # The queue reaching up into an entrypoint (entrypoints.limits imports nothing of ours,
    # so this closes no circle).
    with (tree / "jobqueue/factory.py").open("a") as module:
        module.write("\nimport entrypoints.limits  # planted by the test\n")
    graph = _import_graph(tree)
    circle = _circle(graph)
    assert circle is not None and set(circle) == {"contract.errors", "contract.schemas"}
    assert _upward_imports(graph) == ["jobqueue.factory -> entrypoints.limits"]
