"""The chart lints, renders every case, and every object passes its schema.

Tools (not mocks): Helm 3.19 (`lint --strict`, `template`), kubernetes-validate (the
Kubernetes OpenAPI schemas, strict) and the KEDA / prometheus-operator CRD models.
No API server runs here, so `helm install` itself is not exercised.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helm.tools import CASES, CHART, helm, render, tool, tools_python

CRD_KINDS = {"ScaledObject", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
K8S_VERSIONS = ("1.33.0", "1.34.0")


def test_lint_strict() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout
    cpu = helm("lint", "--strict", str(CHART), "-f", str(CHART / "values-cpu.yaml"))
    assert "0 chart(s) failed" in cpu.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_renders_builtin_kinds_valid(
    case: str, rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    builtin = [d for d in rendered[case] if d["kind"] not in CRD_KINDS]
    assert builtin
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(builtin))
    for version in K8S_VERSIONS:
        result = subprocess.run(
            [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(manifest)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"{case} on Kubernetes {version}:\n{result.stdout}"


def test_kubernetes_validate_catches_a_type_error(tmp_path: Path) -> None:
    """The validator is not a no-op: a string containerPort fails."""
    docs = render()
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", "1.34.0", str(manifest)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0


@pytest.fixture(scope="module")
def crd_schemas() -> dict[str, Any]:
    script = Path(__file__).with_name("crd_schemas.py")
    out = subprocess.run(
        [tools_python(), str(script)], capture_output=True, text=True, check=True, timeout=120
    )
    schemas: dict[str, Any] = json.loads(out.stdout)
    return schemas


@pytest.mark.parametrize("case", sorted(CASES))
def test_crd_objects_pass_strict_schemas(
    case: str, rendered: dict[str, list[dict[str, Any]]], crd_schemas: dict[str, Any]
) -> None:
    objects = [d for d in rendered[case] if d["kind"] in CRD_KINDS]
    expected = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    if case != "autoscaling-off":
        expected.add("ScaledObject")
    assert {d["kind"] for d in objects} == expected
    for obj in objects:
        jsonschema.validate(obj, crd_schemas[obj["kind"]])


def test_crd_schema_catches_a_misspelt_field(
    defaults: list[dict[str, Any]], crd_schemas: dict[str, Any]
) -> None:
    scaled = next(d for d in defaults if d["kind"] == "ScaledObject")
    bad = json.loads(json.dumps(scaled))
    bad["spec"]["minReplicas"] = bad["spec"].pop("minReplicaCount")
    with pytest.raises(jsonschema.ValidationError, match="minReplicas"):
        jsonschema.validate(bad, crd_schemas["ScaledObject"])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("worker.device=tpu", "value must be one of 'gpu', 'cpu'"),
        ("runAsUser=0", "/runAsUser"),
        ("worker.model.path=/etc/passwd", "does not match pattern"),
        ("worker.autoscaling.minReplicas=-1", "/worker/autoscaling/minReplicas"),
        ("worker.autoscalng.enabled=false", "additional properties 'autoscalng' not allowed"),
        ("redis.external.url=http://x", "/redis/external/url"),
        ("gateway.resources=null", "missing property 'resources'"),
    ],
)
def test_schema_rejects_bad_values_clearly(setting: str, message: str) -> None:
    result = helm("template", "t", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_external_redis_without_peers_is_refused() -> None:
    """With NetworkPolicies on, an external Redis nobody may reach is a render error."""
    result = helm(
        "template", "t", str(CHART), "--set", "redis.bundled=false",
        "--set", "redis.external.url=redis://r:6379/0", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "redis.external.peers" in result.stderr


def test_external_redis_url_comes_from_a_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["external-redis"]
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    for kind, name in (
        ("Deployment", "rel-sciserve-gateway"),
        ("Deployment", "rel-sciserve-worker"),
    ):
        env = {
            e["name"]: e
            for e in next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)[
                "spec"
            ]["template"]["spec"]["containers"][0]["env"]
        }
        ref = env["SCISERVE_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "rel-sciserve-redis", "key": "redis-url"}
        assert env["SCISERVE_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "rel-sciserve-auth"
