"""The Dockerfile: hadolint clean, a cpu and a cuda target, each running as the
non-root UID the chart's securityContext names.

hadolint is the real linter; the image itself is not built here (see the chart README).
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import yaml

from tests.helm.tools import CHART, ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """Instructions of each named stage."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\w+)", line, re.I)
        if match:
            current = stages.setdefault(match.group(1), [])
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


def test_hadolint_clean() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and not findings, findings


def test_hadolint_is_not_a_no_op(tmp_path: Any) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run([tool("hadolint"), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_targets_run_as_the_charts_non_root_uid() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    stages = _stages()
    assert {"cpu", "cuda"} <= set(stages)
    for target in ("cpu", "cuda"):
        users = [line.split()[1] for line in stages[target] if line.startswith("USER ")]
        assert users and users[-1] == str(values["runAsUser"]), target
        assert any(line.startswith("CMD ") for line in stages[target])
        assert "STOPSIGNAL SIGTERM" in stages[target]


def test_install_failures_are_not_swallowed() -> None:
    assert "|| true" not in DOCKERFILE.read_text()
