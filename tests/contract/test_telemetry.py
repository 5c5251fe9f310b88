# mypy: disable-error-code="index, union-attr"
"""contract/telemetry.py: which OTEL_* variables turn traces on, the endpoint vLLM gets,
the SERVER-span middleware that continues a caller's `traceparent`, and the GenAI names
the spans use, checked against the semantic-conventions package installed."""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contract import telemetry as telemetry_module
from contract.telemetry import (
    SCHEMA_URL,
    SEMCONV_VERSION,
    Telemetry,
    TraceRequests,
    parent_context,
    traces_endpoint,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),  # a name alone exports nothing
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_traces_are_off_unless_the_variables_ask(environ: dict[str, str], on: bool) -> None:
    telemetry = Telemetry.from_env(environ)
    try:
        assert telemetry.enabled is on
    finally:
        telemetry.shutdown()


def test_the_service_name_is_the_variables_else_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    ours = Telemetry.from_env(service_name="sciserve-worker")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "mine")
    theirs = Telemetry.from_env(service_name="sciserve-worker")
    try:
        assert ours.provider.resource.attributes["service.name"] == "sciserve-worker"
        assert theirs.provider.resource.attributes["service.name"] == "mine"
    finally:
        ours.shutdown()
        theirs.shutdown()


def test_vllm_gets_the_full_traces_endpoint_of_the_protocol() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    assert traces_endpoint(base) == "http://c:4318/v1/traces"  # as the HTTP exporter adds
    grpc = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert traces_endpoint(grpc) == "http://c:4317"
    given = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"}
    assert traces_endpoint(given) == "http://t:1/x"
    assert traces_endpoint({}) is None
    assert traces_endpoint({"OTEL_TRACES_EXPORTER": "console"}) is None
    with pytest.raises(ValueError, match="http/protobuf or grpc"):
        traces_endpoint({**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_a_malformed_or_missing_traceparent_starts_a_new_trace() -> None:
    assert parent_context(None) is None and parent_context({"other": "1"}) is None
    assert parent_context({"Traceparent": TRACEPARENT}) is not None  # any header case


def _traced_app() -> tuple[FastAPI, InMemorySpanExporter, list[Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[Any] = []
    app = FastAPI()

    @app.post("/solve")
    async def solve(request: Request) -> dict[str, str]:
        seen.append(getattr(request.state, "trace_context", None))
        return {}

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, str]:
        seen.append(getattr(request.state, "trace_context", None))
        return {}

    app.add_middleware(
        TraceRequests,
        telemetry=Telemetry(provider=provider),
        routes={("POST", "/solve")},
        component="test",
    )
    return app, exporter, seen


def test_a_door_continues_the_callers_trace_and_hands_its_context_on() -> None:
    app, exporter, seen = _traced_app()

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post("/solve", headers={"traceparent": TRACEPARENT})).is_success
            assert (await client.get("/healthz")).is_success
            assert (await client.post("/solve")).is_success

    asyncio.run(go())
    continued, fresh = exporter.get_finished_spans()  # /healthz made none
    assert continued.name == "POST /solve" and continued.kind.name == "SERVER"
    assert format(continued.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert format(continued.parent.span_id, "016x") == TRACEPARENT.split("-")[2]
    assert continued.attributes["http.response.status_code"] == 200
    assert continued.attributes["openinference.span.kind"] == "CHAIN"
    assert fresh.parent is None and fresh.context.trace_id != continued.context.trace_id
    # The handler gets the request span's own context to put into the job.
    first, health, second = seen
    assert first["traceparent"].split("-")[2] == format(continued.context.span_id, "016x")
    assert health is None and second is not None


def test_every_gen_ai_name_we_emit_is_a_semantic_convention() -> None:
    """The `gen_ai.*` attribute names and operation names in workers/job_spans.py are
    those of the GenAI conventions (the installed semantic-conventions package still
    lists every one of v1.41.0's)."""
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes

    known = {
        value
        for name, value in vars(gen_ai_attributes).items()
        if name.startswith("GEN_AI_") and isinstance(value, str)
    }
    source = Path(__file__).resolve().parents[2] / "workers" / "job_spans.py"
    strings = {
        node.value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    emitted = {s for s in strings if s.startswith("gen_ai.")}
    assert emitted >= {
        "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.request.temperature",
        "gen_ai.request.max_tokens", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
        "gen_ai.response.finish_reasons", "gen_ai.tool.name",
    }  # fmt: skip
    assert emitted <= known, emitted - known
    operations = {v.value for v in gen_ai_attributes.GenAiOperationNameValues}
    assert {"chat", "text_completion", "execute_tool"} <= operations
    assert SCHEMA_URL.endswith(SEMCONV_VERSION) and SEMCONV_VERSION == "1.41.0"
    assert "v1.41.0" in inspect.getsource(telemetry_module)
