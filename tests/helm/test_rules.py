"""The PrometheusRule: promtool checks the rendered rules and runs their unit tests
(tests/helm/rules_test.yaml: each alert fires on its trace and stays quiet on the
healthy one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.helm.tools import FULLNAME, one, tool

HERE = Path(__file__).parent


def _rules_file(defaults: list[dict[str, Any]], folder: Path) -> Path:
    rule = one(defaults, "PrometheusRule", FULLNAME)
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


def test_promtool_check_rules(defaults: list[dict[str, Any]], tmp_path: Path) -> None:
    rules = _rules_file(defaults, tmp_path)
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout


def test_promtool_rule_unit_tests(defaults: list[dict[str, Any]], tmp_path: Path) -> None:
    _rules_file(defaults, tmp_path)
    shutil.copy(HERE / "rules_test.yaml", tmp_path / "rules_test.yaml")
    result = subprocess.run(
        [tool("promtool"), "test", "rules", "rules_test.yaml"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test(defaults: list[dict[str, Any]]) -> None:
    rule = one(defaults, "PrometheusRule", FULLNAME)
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    tested = {
        t["alertname"]
        for case in yaml.safe_load((HERE / "rules_test.yaml").read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert alerts == tested
