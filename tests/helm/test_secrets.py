"""The chart's two service secrets, and who gets them.

- The bundled Redis requires a password (requirepass) from a Secret: generated, given
  (`redis.auth.password`) or existing (`redis.auth.existingSecret`). The Redis URL that
  carries it reaches the gateway, the workers and the API-key Job only, never a tool
  server (model-written code runs there).
- The tool servers require a service token (SCISERVE_TOOL_TOKEN) from a Secret; the
  workers send it and Prometheus scrapes with it. The gateway calls no tool and has none.

Rendered with Helm; the Redis pod's own start command and probe are then run for real
against a local `redis-server`, and the gateway's URL, expanded as Kubernetes expands
`$(VAR)`, must reach it.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from entrypoints.embedded import free_port
from tests.helm.tools import CASES, CHART, FULLNAME, find, helm, one, render

REDIS_SECRET = f"{FULLNAME}-redis"
TOOL_SECRET = f"{FULLNAME}-tool-token"
REDIS_ENV = {"SCISERVE_REDIS_URL", "REDIS_PASSWORD", "REDISCLI_AUTH"}


def _secret_value(docs: list[dict[str, Any]], name: str, key: str) -> str:
    return base64.b64decode(one(docs, "Secret", name)["data"][key]).decode()


def _containers(docs: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, workload name, container) of every container of every workload."""
    found = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            template = doc["spec"]["template"]
            component = template["metadata"]["labels"]["app.kubernetes.io/component"]
            spec = template["spec"]
            for container in spec["containers"] + spec.get("initContainers", []):
                found.append((component, doc["metadata"]["name"], container))
    return found


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_refs(container: dict[str, Any]) -> set[str]:
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    return refs | {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of an env value from the variables before it."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), value)


def test_the_bundled_redis_requires_a_password_from_a_secret(
    defaults: list[dict[str, Any]],
) -> None:
    password = _secret_value(defaults, REDIS_SECRET, "redis-password")
    assert len(password) >= 32 and password.isalnum()
    assert "redis-url" not in one(defaults, "Secret", REDIS_SECRET)["data"]
    [container] = one(defaults, "StatefulSet", REDIS_SECRET)["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["command"] == ["/bin/sh", "-c"]
    [script] = container["args"]
    assert "requirepass" in script and '"$REDIS_PASSWORD"' in script
    env = _env(container)
    for name in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": REDIS_SECRET,
            "key": "redis-password",
        }
    assert password not in str(container)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_redis_url_reaches_only_the_gateway_workers_and_key_job(
    case: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered[case]
    redis_secrets = {REDIS_SECRET} | {
        s["metadata"]["name"] for s in find(docs, "Secret") if "redis" in s["metadata"]["name"]
    }
    seen: set[str] = set()
    for component, name, container in _containers(docs):
        env = _env(container)
        if component in ("gateway", "worker", "keys"):
            if container["name"] != "model":  # the worker's model-copy init container
                assert "SCISERVE_REDIS_URL" in env, name
                seen.add(component)
        elif component == "redis":
            assert "SCISERVE_REDIS_URL" not in env, name
        else:
            assert component == "tool-server", name
            assert not REDIS_ENV & set(env), f"{name} gets Redis settings"
            assert not _secret_refs(container) & redis_secrets, f"{name} reads a Redis Secret"
            assert not any("redis" in str(e).lower() for e in env.values()), name
    assert {"gateway", "worker"} <= seen


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_tool_token_reaches_the_tool_servers_and_workers(
    case: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered[case]
    assert len(_secret_value(docs, TOOL_SECRET, "tool-token")) >= 32
    reference = {"name": TOOL_SECRET, "key": "tool-token"}
    tool_servers = 0
    for component, name, container in _containers(docs):
        env = _env(container)
        if component in ("tool-server", "worker") and container["name"] != "model":
            token = env["SCISERVE_TOOL_TOKEN"]
            assert token["valueFrom"]["secretKeyRef"] == reference, name
            tool_servers += component == "tool-server"
        else:
            assert "SCISERVE_TOOL_TOKEN" not in env, f"{name} needs no tool token"
            assert TOOL_SECRET not in _secret_refs(container), name
    assert tool_servers == 5
    # Tool servers answer /metrics only with the token: Prometheus scrapes with it.
    [endpoint] = one(docs, "ServiceMonitor", f"{FULLNAME}-tool-servers")["spec"]["endpoints"]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": reference}


def test_given_and_existing_secrets_are_used() -> None:
    token, password = "given-tool-token-0123456789", "given-redis-password-0123"
    docs = render("--set", f"toolServers.token={token}", "--set", f"redis.auth.password={password}")
    assert _secret_value(docs, TOOL_SECRET, "tool-token") == token
    assert _secret_value(docs, REDIS_SECRET, "redis-password") == password

    docs = render(
        "--set", "toolServers.existingSecret=my-tools",
        "--set", "redis.auth.existingSecret=my-redis",
    )  # fmt: skip
    names = {s["metadata"]["name"] for s in find(docs, "Secret")}
    assert TOOL_SECRET not in names and REDIS_SECRET not in names
    for component, name, container in _containers(docs):
        env = _env(container)
        if "SCISERVE_TOOL_TOKEN" in env:
            assert env["SCISERVE_TOOL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "my-tools"
        if "REDIS_PASSWORD" in env:
            assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "my-redis"
        assert component != "tool-server" or "REDIS_PASSWORD" not in env, name
    [endpoint] = one(docs, "ServiceMonitor", f"{FULLNAME}-tool-servers")["spec"]["endpoints"]
    assert endpoint["authorization"]["credentials"]["name"] == "my-tools"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("toolServers.token=short", "/toolServers/token"),
        ("redis.auth.password=with@sign-0123456789", "/redis/auth/password"),
        ("redis.auth.passwrd=x", "additional properties 'passwrd' not allowed"),
    ],
)
def test_the_schema_refuses_weak_or_unusable_secrets(setting: str, message: str) -> None:
    result = helm("template", "t", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_keda_reads_prometheus_not_redis(defaults: list[dict[str, Any]]) -> None:
    """The worker autoscaler queries Prometheus (the gateway's queue gauges), never
    Redis, so Redis's password needs no KEDA TriggerAuthentication."""
    scaled = one(defaults, "ScaledObject", f"{FULLNAME}-worker")
    assert {t["type"] for t in scaled["spec"]["triggers"]} == {"prometheus"}
    assert not find(defaults, "TriggerAuthentication")


def test_the_rendered_redis_starts_with_its_password(
    defaults: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The Redis container's own script and readiness probe, run against a local
    `redis-server`: it demands the Secret's password, keeps it off its command line, and
    the gateway's SCISERVE_REDIS_URL (as Kubernetes expands it) reaches it."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed (the tests' Redis package ships it).", pytrace=False)
    password = _secret_value(defaults, REDIS_SECRET, "redis-password")
    [container] = one(defaults, "StatefulSet", REDIS_SECRET)["spec"]["template"]["spec"][
        "containers"
    ]
    port = free_port()
    [script] = container["args"]
    script = (
        script.replace("/tmp/", f"{tmp_path}/")
        .replace("--dir /data", f"--dir {tmp_path}")
        .replace("--port 6379", f"--port {port} --bind 127.0.0.1")
    )
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    server = subprocess.Popen(
        [*container["command"], script],
        env={**base_env, "REDIS_PASSWORD": password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        probe = container["readinessProbe"]["exec"]["command"]
        probe = [*probe[:-1], probe[-1].replace("redis-cli", f"redis-cli -p {port}")]

        def ready(env: dict[str, str]) -> bool:
            return subprocess.run(probe, env={**base_env, **env}, timeout=10).returncode == 0

        deadline = time.monotonic() + 20
        while not ready({"REDISCLI_AUTH": password}):
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "the probe never passed"
            time.sleep(0.2)
        assert not ready({}), "the probe passes without the password"
        assert password not in Path(f"/proc/{server.pid}/cmdline").read_text()

        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port, socket_timeout=5).ping()
        gateway = one(defaults, "Deployment", f"{FULLNAME}-gateway")
        env = _env(gateway["spec"]["template"]["spec"]["containers"][0])
        url = _expand(env["SCISERVE_REDIS_URL"]["value"], {"REDIS_PASSWORD": password})
        assert url == f"redis://:{password}@{REDIS_SECRET}:6379/0"
        local = url.replace(f"{REDIS_SECRET}:6379", f"127.0.0.1:{port}")
        client = redis.Redis.from_url(local, socket_timeout=5)
        assert client.ping() is True
        client.close()
    finally:
        server.terminate()
        server.wait(10)
