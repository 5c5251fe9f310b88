"""The chart tests' tools and rendering helpers.

The tools come from scripts/install-ops-tools.sh (Helm 3.19, kubectl, promtool,
hadolint, kubernetes-validate, the CRD models and the dashboard builder, under .tools/).
A missing tool fails the test with the command that installs it: CI runs that script
first, so these tests never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sciserve"
TOOLS = ROOT / ".tools"
TOOLS_PYTHON = TOOLS / "venv" / "bin" / "python"
NAMESPACE = "sciserve-test"
RELEASE = "rel"
FULLNAME = f"{RELEASE}-sciserve"

# The render cases the issue names, as `helm template` arguments.
CASES: dict[str, list[str]] = {
    "defaults": [],
    "cpu-workers": ["-f", str(CHART / "values-cpu.yaml")],
    "external-redis": [
        "--set", "redis.bundled=false",
        "--set", "redis.external.url=redis://redis.example.internal:6379/0",
        "--set", "redis.external.peers[0].ipBlock.cidr=10.0.5.10/32",
    ],
    "sandbox-runtime": ["--set", "toolServers.runtimeClassName=gvisor"],
    "autoscaling-off": ["--set", "worker.autoscaling.enabled=false"],
    "tracing-on": [
        "--set", "tracing.otlpEndpoint=http://otel-collector.observability:4318",
        "--set", "tracing.toolServers=true",
        "--set", "tracing.collector[0].namespaceSelector.matchLabels.team=observability",
    ],
    "everything-on": [
        "--set", "gateway.ingress.enabled=true",
        "--set", "gateway.autoscaling.enabled=true",
        "--set", "auth.apiKeys[0].name=alice",
        "--set", "auth.apiKeys[0].scopes[0]=solve",
        "--set", "auth.apiKeys[0].key=sk-0123456789abcdef0123",
        "--set", "worker.model.source=image",
        "--set", "worker.model.image.repository=registry.example/models/qwen",
        "--set", "worker.model.image.tag=1.5b",
    ],
}  # fmt: skip


def tool(name: str) -> str:
    """Path of an installed tool, or a failure that says how to install it."""
    for candidate in (TOOLS / "bin" / name, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        f"{name} is not installed: run scripts/install-ops-tools.sh (it puts {name} in "
        f"{TOOLS / 'bin'}); CI runs it before the tests.",
        pytrace=False,
    )


def tools_python() -> str:
    if not TOOLS_PYTHON.exists():
        pytest.fail(f"{TOOLS_PYTHON} is missing: run scripts/install-ops-tools.sh.", pytrace=False)
    return str(TOOLS_PYTHON)


def helm_env() -> dict[str, str]:
    """Helm's cache, config and data inside .tools/, never in the home folder."""
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(TOOLS / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(TOOLS / "helm" / "config"),
        "HELM_DATA_HOME": str(TOOLS / "helm" / "data"),
    }


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, env=helm_env(), timeout=120
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}", pytrace=False)
    return result


def render_text(*args: str) -> str:
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args).stdout


def render(*args: str) -> list[dict[str, Any]]:
    """`helm template` output as a list of objects."""
    return [doc for doc in yaml.safe_load_all(render_text(*args)) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload."""
    specs = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append(
                (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
            )
    return specs
