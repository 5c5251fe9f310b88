"""Policy assertions on the rendered objects: security, resources, probes, drain and
the NetworkPolicy matrix (a test per allowed and per denied path).

The matrix is read by tests/helm/netpol.py (NetworkPolicy semantics from the API
reference); no CNI runs here, so enforcement itself is a real cluster's to show.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.netpol import Pod, allowed
from tests.helm.tools import CASES, FULLNAME, NAMESPACE, find, one, pod_specs, render

INSTANCE = {"app.kubernetes.io/name": "sciserve", "app.kubernetes.io/instance": "rel"}


def component(name: str, **extra: str) -> Pod:
    return Pod(
        {**INSTANCE, "app.kubernetes.io/component": name, **extra},
        NAMESPACE,
        {"kubernetes.io/metadata.name": NAMESPACE},
    )


GATEWAY = component("gateway")
WORKER = component("worker")
TOOL = component("tool-server", **{"sciserve.io/tool-server": "python"})
REDIS = component("redis")
KEYS = component("keys")
CLIENT = Pod({"app": "frontend"}, "apps", {"kubernetes.io/metadata.name": "apps"})
PROMETHEUS = Pod(
    {"app.kubernetes.io/name": "prometheus"}, "monitoring",
    {"kubernetes.io/metadata.name": "monitoring"},
)  # fmt: skip
OTHER_POD = Pod({"app": "other"}, NAMESPACE, {"kubernetes.io/metadata.name": NAMESPACE})
DNS = Pod({"k8s-app": "kube-dns"}, "kube-system", {"kubernetes.io/metadata.name": "kube-system"})
INTERNET = Pod({}, "elsewhere", {})

ALLOWED = [
    ("client->gateway", CLIENT, GATEWAY, 8000),
    ("prometheus->gateway", PROMETHEUS, GATEWAY, 8000),
    ("gateway->redis", GATEWAY, REDIS, 6379),
    ("worker->redis", WORKER, REDIS, 6379),
    ("keys-job->redis", KEYS, REDIS, 6379),
    ("worker->tool-server", WORKER, TOOL, 8100),
    ("prometheus->worker", PROMETHEUS, WORKER, 8001),
    ("prometheus->tool-server", PROMETHEUS, TOOL, 8100),
    ("gateway->dns", GATEWAY, DNS, 53),
    ("worker->dns", WORKER, DNS, 53),
]
DENIED = [
    ("client->worker", CLIENT, WORKER, 8001),
    ("client->redis", CLIENT, REDIS, 6379),
    ("client->tool-server", CLIENT, TOOL, 8100),
    ("gateway->tool-server", GATEWAY, TOOL, 8100),
    ("gateway->worker", GATEWAY, WORKER, 8001),
    ("gateway->internet", GATEWAY, INTERNET, 443),
    ("worker->internet", WORKER, INTERNET, 443),
    ("tool-server->redis", TOOL, REDIS, 6379),
    ("tool-server->dns", TOOL, DNS, 53),
    ("tool-server->internet", TOOL, INTERNET, 443),
    ("tool-server->worker", TOOL, WORKER, 8001),
    ("redis->internet", REDIS, INTERNET, 443),
    ("other-pod->redis", OTHER_POD, REDIS, 6379),
    ("other-pod->tool-server", OTHER_POD, TOOL, 8100),
    ("prometheus->redis", PROMETHEUS, REDIS, 6379),
    ("worker->gateway", WORKER, GATEWAY, 8000),
]


def _policies(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    policies = find(docs, "NetworkPolicy")
    for p in policies:
        p["metadata"].setdefault("namespace", NAMESPACE)
    return policies


@pytest.mark.parametrize(("path", "src", "dst", "port"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_network_path_allowed(
    defaults: list[dict[str, Any]], path: str, src: Pod, dst: Pod, port: int
) -> None:
    assert allowed(_policies(defaults), src, dst, port), f"{path} must be allowed"


@pytest.mark.parametrize(("path", "src", "dst", "port"), DENIED, ids=[d[0] for d in DENIED])
def test_network_path_denied(
    defaults: list[dict[str, Any]], path: str, src: Pod, dst: Pod, port: int
) -> None:
    assert not allowed(_policies(defaults), src, dst, port), f"{path} must be denied"


def test_clients_list_limits_who_reaches_the_gateway() -> None:
    docs = render(
        "--set", "networkPolicy.clients[0].namespaceSelector.matchLabels.team=apps"
    )  # fmt: skip
    policies = _policies(docs)
    team = Pod({}, "apps", {"team": "apps"})
    assert allowed(policies, team, GATEWAY, 8000)
    assert not allowed(policies, CLIENT, GATEWAY, 8000)
    assert allowed(policies, PROMETHEUS, GATEWAY, 8000)  # still scraped


def test_worker_reaches_the_model_store_only_when_listed() -> None:
    store = Pod({"app": "minio"}, "storage", {"kubernetes.io/metadata.name": "storage"})
    assert not allowed(_policies(render()), WORKER, store, 443)
    peer = "networkPolicy.modelStore[0].namespaceSelector.matchLabels"
    docs = render("--set", f"{peer}.kubernetes\\.io/metadata\\.name=storage")
    assert allowed(_policies(docs), WORKER, store, 443)
    assert not allowed(_policies(docs), GATEWAY, store, 443)


def test_default_deny_selects_every_pod_of_the_release(defaults: list[dict[str, Any]]) -> None:
    deny = one(defaults, "NetworkPolicy", f"{FULLNAME}-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for doc in defaults:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert INSTANCE.items() <= labels.items(), doc["metadata"]["name"]


# --- security, resources, probes ---


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pod_is_locked_down(case: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, spec in pod_specs(rendered[case]):
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] > 0, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            resources = container["resources"]
            assert resources.get("requests") and resources.get("limits"), where
            assert "memory" in resources["limits"], where


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_long_running_container_has_probes(
    case: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    for name, spec in pod_specs(rendered[case]):
        if name.startswith("Job/"):
            continue
        for container in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{name}/{container['name']} has no {probe}"


def _worker(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]
    return spec


def test_worker_drains_within_its_grace(defaults: list[dict[str, Any]]) -> None:
    spec = _worker(defaults)
    container = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    drain = float(env["SCISERVE_DRAIN_TIMEOUT_S"])
    assert spec["terminationGracePeriodSeconds"] >= drain + 10
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "kill -TERM 1" in pre_stop and "kill -0 1" in pre_stop


def test_worker_readiness_is_engine_ready_and_startup_covers_engine_start(
    defaults: list[dict[str, Any]],
) -> None:
    container = _worker(defaults)["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    # 133 s measured for engine start with LoRA on an H100; leave room for image pulls.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 2 * 133


def test_gpu_workers_request_gpus_and_tolerate_gpu_nodes(defaults: list[dict[str, Any]]) -> None:
    spec = _worker(defaults)
    resources = spec["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["readOnly"] is True


def test_cpu_preset_runs_without_gpus(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["cpu-workers"]
    for name, spec in pod_specs(docs):
        for container in spec["containers"]:
            text = str(container["resources"])
            assert "nvidia.com/gpu" not in text, name
            if "sciserve" in container["image"]:
                assert container["image"].endswith("-cpu"), name
        assert "tolerations" not in spec or all("nvidia" not in str(t) for t in spec["tolerations"])
    env = {e["name"] for e in _worker(docs)["containers"][0]["env"]}
    assert "SCISERVE_MODEL" not in env  # the demo model prepared in the cpu image


def test_model_from_an_image_is_copied_by_an_init_container(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    spec = _worker(rendered["everything-on"])
    [init] = spec["initContainers"]
    assert init["image"] == "registry.example/models/qwen:1.5b"
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]


def test_tool_servers_sandbox_runtime_class(rendered: dict[str, list[dict[str, Any]]]) -> None:
    tools = [
        d for d in rendered["sandbox-runtime"]
        if d["kind"] == "Deployment" and "-tool-" in d["metadata"]["name"]
    ]  # fmt: skip
    assert len(tools) == 5
    for d in tools:
        assert d["spec"]["template"]["spec"]["runtimeClassName"] == "gvisor"
    for d in find(rendered["defaults"], "Deployment"):
        assert "runtimeClassName" not in d["spec"]["template"]["spec"]


def test_workers_find_every_tool_server(defaults: list[dict[str, Any]]) -> None:
    import json

    env = {e["name"]: e.get("value") for e in _worker(defaults)["containers"][0]["env"]}
    urls = json.loads(env["SCISERVE_TOOL_URLS"])
    assert sorted(urls) == ["climate", "epidemiology", "mechanics", "pde", "python"]
    services = {d["metadata"]["name"] for d in find(defaults, "Service")}
    for url in urls.values():
        assert url.split("//")[1].split(":")[0] in services


def test_secrets_hold_the_keys_not_the_manifests(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["everything-on"]
    secret_envs = ("SCISERVE_ADMIN_KEY", "SCISERVE_TOOL_TOKEN", "REDIS_PASSWORD", "REDISCLI_AUTH")
    for _, spec in pod_specs(docs):
        for container in spec["containers"]:
            env = container.get("env", [])
            for e in env:
                if e["name"] in secret_envs:
                    assert "secretKeyRef" in e["valueFrom"], e
                if e["name"] == "SCISERVE_REDIS_URL":
                    # The bundled Redis's URL holds its password only as $(REDIS_PASSWORD),
                    # expanded by Kubernetes from the Secret-backed variable before it.
                    assert "$(REDIS_PASSWORD)@" in e["value"], e
                    assert [v["name"] for v in env].index("REDIS_PASSWORD") < env.index(e)
    job = one(docs, "Job", f"{FULLNAME}-keys")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"


def test_redis_is_persistent_with_aof(defaults: list[dict[str, Any]]) -> None:
    redis = one(defaults, "StatefulSet", f"{FULLNAME}-redis")
    [script] = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--appendonly yes" in script
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
