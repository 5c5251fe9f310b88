"""The chart's optional OTLP endpoint (values `tracing`): off by default; when set, the
gateway and the workers get the OpenTelemetry variables and egress to the collector, and
the tool servers only when `tracing.toolServers` asks (they otherwise reach nothing)."""

from __future__ import annotations

from typing import Any

from tests.helm.netpol import Pod, allowed
from tests.helm.test_policy import DNS, GATEWAY, INTERNET, TOOL, WORKER, _policies
from tests.helm.tools import CASES, CHART, helm, pod_specs, render

ENDPOINT = "http://otel-collector.observability:4318"
COLLECTOR = Pod({"app": "otel-collector"}, "observability", {"team": "observability"})
ELSEWHERE = Pod({"app": "other"}, "elsewhere", {"team": "elsewhere"})


def env_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each workload's first container's environment (plain values only)."""
    return {
        name: {e["name"]: e.get("value", "") for e in spec["containers"][0].get("env", [])}
        for name, spec in pod_specs(docs)
    }


def test_no_endpoint_no_traces(defaults: list[dict[str, Any]]) -> None:
    for name, env in env_of(defaults).items():
        assert not [k for k in env if k.startswith("OTEL_")], name
        assert "SCISERVE_TRACE_CONTENT" not in env, name
    assert not allowed(_policies(defaults), WORKER, COLLECTOR, 4318)


def test_an_endpoint_traces_the_gateway_and_workers() -> None:
    docs = render("--set", f"tracing.otlpEndpoint={ENDPOINT}", "--set", "tracing.content=true")
    envs = env_of(docs)
    for name, env in envs.items():
        if "-gateway" in name or "-worker" in name:
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ENDPOINT, name
            assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
            assert env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
            assert env["SCISERVE_TRACE_CONTENT"] == "true"
            service = "sciserve-gateway" if "-gateway" in name else "sciserve-worker"
            assert env["OTEL_SERVICE_NAME"] == service
        else:  # tool servers, Redis, the key Job
            assert not [k for k in env if k.startswith("OTEL_")], name
    policies = _policies(docs)
    for source in (GATEWAY, WORKER):
        assert allowed(policies, source, COLLECTOR, 4318)  # no peers listed: any, this port
        assert not allowed(policies, source, COLLECTOR, 4317)
        assert not allowed(policies, source, INTERNET, 443)
    assert not allowed(policies, TOOL, COLLECTOR, 4318)
    assert not allowed(policies, TOOL, DNS, 53)


def test_tool_servers_trace_only_when_asked_and_reach_only_the_collector(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["tracing-on"]  # toolServers on, the collector's namespace listed
    envs = env_of(docs)
    tools = {name: env for name, env in envs.items() if "-tool-" in name}
    assert tools
    for name, env in tools.items():
        server = name.rsplit("-tool-", 1)[1]
        assert env["OTEL_SERVICE_NAME"] == f"sciserve-tools-{server}"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ENDPOINT
    policies = _policies(docs)
    for source in (GATEWAY, WORKER, TOOL):
        assert allowed(policies, source, COLLECTOR, 4318)
        assert not allowed(policies, source, ELSEWHERE, 4318)  # only the listed peers
    assert allowed(policies, TOOL, DNS, 53)
    assert not allowed(policies, TOOL, INTERNET, 443)
    assert not allowed(policies, TOOL, WORKER, 8001)


def test_sampler_and_protocol_pass_through() -> None:
    docs = render(
        "--set", f"tracing.otlpEndpoint={ENDPOINT}", "--set", "tracing.protocol=grpc",
        "--set", "tracing.sampler=parentbased_traceidratio", "--set", "tracing.samplerArg=0.1",
    )  # fmt: skip
    worker = next(env for name, env in env_of(docs).items() if "-worker" in name)
    assert worker["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert worker["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert worker["OTEL_TRACES_SAMPLER_ARG"] == "0.1"


def test_schema_refuses_bad_tracing_values() -> None:
    for setting, message in (
        ("tracing.protocol=http/json", "/tracing/protocol"),
        ("tracing.otlpEndpoint=otel:4318", "/tracing/otlpEndpoint"),
        ("tracing.sampler=sometimes", "/tracing/sampler"),
        ("tracing.port=0", "/tracing/port"),
    ):
        result = helm("template", "t", str(CHART), "--set", setting, check=False)
        assert result.returncode != 0, setting
        assert message in result.stderr, result.stderr
    assert "tracing-on" in CASES  # rendered and validated with every other case
