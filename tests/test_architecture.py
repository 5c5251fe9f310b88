"""The layers hold (`lint-imports`), and each import-linter contract can fail: for every
contract, one planted import in a copy of the tree breaks it. A contract that cannot
fail would guard nothing.
"""

from __future__ import annotations

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
