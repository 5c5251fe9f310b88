"""OpenTelemetry traces, off unless the standard `OTEL_*` variables ask for them
(DESIGN §9).

The official SDK and OTLP exporter do the work; nothing here exports on its own. One
`Telemetry` is built from the environment by whatever starts a part of the service (the
gateway, a worker, a tool server; the embedded service builds one for all three) and is
handed down to it explicitly.

- On: `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or
  `OTEL_TRACES_EXPORTER` names `otlp` or `console`. Off: none of them, or
  `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`.
- The SDK reads the rest itself: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
  `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, timeouts.
- `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`): `http/protobuf`, the
  specification's default, or `grpc`.

Span attributes follow the GenAI semantic conventions of OpenTelemetry semantic
conventions v1.41.0 (`SEMCONV_VERSION`, the last release that held them before they
moved to their own repository), plus `sciserve.*` and OpenInference's
`openinference.span.kind`, which Phoenix reads to show a span as CHAIN, LLM or TOOL.

Trace context crosses processes as a W3C carrier (`traceparent`, `tracestate`): in
HTTP headers, and inside a queued job (jobqueue/protocol.py `Job.trace_context`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

SEMCONV_VERSION = "1.41.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
DEFAULT_SERVICE_NAME = "sciserve"
HTTP_PROTOCOL, GRPC_PROTOCOL = "http/protobuf", "grpc"

# OpenInference's span kinds (Phoenix's icons and views).
SPAN_KIND = "openinference.span.kind"
CHAIN, LLM, TOOL = "CHAIN", "LLM", "TOOL"

_PROPAGATOR = TraceContextTextMapPropagator()  # W3C only: the carrier a job holds

Carrier = dict[str, str]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """The OTLP protocol the variables ask for; `http/protobuf` when unset."""
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    protocol = (protocol or HTTP_PROTOCOL).strip()
    if protocol not in (HTTP_PROTOCOL, GRPC_PROTOCOL):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported here; use "
            f"{HTTP_PROTOCOL} or {GRPC_PROTOCOL}."
        )
    return protocol


def _exporter_name(environ: Mapping[str, str]) -> str | None:
    """Which exporter the variables ask for: `otlp`, `console`, or None (traces off)."""
    if _flag(environ.get("OTEL_SDK_DISABLED")):
        return None
    named = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [n for n in named if n]
    if "none" in named:
        return None
    if "console" in named:
        return "console"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint or "otlp" in named else None


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """The full OTLP traces endpoint the variables name, for a component that takes one
    URL (vLLM's `otlp_traces_endpoint`): the traces endpoint as given, else the base
    endpoint, with the `/v1/traces` path the HTTP exporter adds to a base endpoint."""
    if _exporter_name(environ) != "otlp":
        return None
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint:
        return endpoint
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    if otlp_protocol(environ) == HTTP_PROTOCOL:
        return base.rstrip("/") + "/v1/traces"
    return base


@dataclass(frozen=True)
class Telemetry:
    """A part of the service's tracing: a tracer provider with its exporter, or none
    (traces off, every span a no-op). `content`: prompts and outputs may go into spans
    (SCISERVE_TRACE_CONTENT); hidden thoughts still only for jobs that may reveal them."""

    provider: Any = None  # opentelemetry.sdk.trace.TracerProvider, when on
    content: bool = False

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        content: bool = False,
        service_name: str = DEFAULT_SERVICE_NAME,
    ) -> Telemetry:
        """Traces as the `OTEL_*` variables ask (off when they ask for none).
        `service_name` is used when neither `OTEL_SERVICE_NAME` nor
        `OTEL_RESOURCE_ATTRIBUTES` names one."""
        environ = os.environ if environ is None else environ
        exporter_name = _exporter_name(environ)
        if exporter_name is None:
            return cls(content=content)
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        attributes: dict[str, Any] = {}
        if not environ.get("OTEL_SERVICE_NAME") and "service.name=" not in environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        ):
            attributes[SERVICE_NAME] = service_name
        # The sampler comes from OTEL_TRACES_SAMPLER (parent-based always-on by default).
        provider = TracerProvider(resource=Resource.create(attributes))
        exporter: Any
        if exporter_name == "console":
            exporter = ConsoleSpanExporter()
        elif otlp_protocol(environ) == GRPC_PROTOCOL:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, TLS: from OTEL_EXPORTER_OTLP_*
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as OTLPHttpSpanExporter,
            )

            exporter = OTLPHttpSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider=provider, content=content)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def tracer(self, name: str) -> Tracer:
        """A tracer of this part (a no-op one when traces are off)."""
        if self.provider is None:
            return trace.NoOpTracer()
        tracer: Tracer = self.provider.get_tracer(name, schema_url=SCHEMA_URL)
        return tracer

    def flush(self, timeout_s: float = 10.0) -> None:
        """Export every finished span now (tests; a process about to exit)."""
        if self.provider is not None:
            self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        """Export what is left and stop the exporter; a second call does nothing."""
        if self.provider is not None:
            self.provider.shutdown()


OFF = Telemetry()


def carrier(span: Span) -> Carrier:
    """The W3C trace context of `span`, for a call or a job made under it."""
    headers: Carrier = {}
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
    return headers


def parent_context(headers: Mapping[str, str] | None) -> Context | None:
    """The trace context a caller sent (W3C `traceparent`), or None to start a trace."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    if "traceparent" not in lowered:
        return None
    return _PROPAGATOR.extract(lowered)


def end_span(span: Span, error: BaseException | None = None) -> None:
    """End a span; with `error`, marked as failed with the error's type."""
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, str(error)[:500] or type(error).__name__))
        span.set_attribute("error.type", type(error).__name__)
    span.end()


def _route_path(scope: Mapping[str, Any]) -> str:
    """The path inside the app: a mounted app sees its mount point in `root_path`."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class TraceRequests:
    """ASGI middleware: a SERVER span for each request to one of `routes` ((method,
    path) pairs), continuing the caller's `traceparent`. The span's own context goes
    into the request's state as `trace_context` (a W3C carrier), so a handler can hand
    it on explicitly (the gateway puts it into the job it queues). Other routes (health
    probes, polling) make no spans."""

    def __init__(
        self,
        app: Any,
        telemetry: Telemetry,
        routes: Collection[tuple[str, str]],
        component: str,
    ):
        self.app = app
        self.telemetry = telemetry
        self.routes = set(routes)
        self.tracer = telemetry.tracer(component)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.telemetry.enabled:
            await self.app(scope, receive, send)
            return
        method, route = scope["method"], _route_path(scope)
        if (method, route) not in self.routes:
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        span = self.tracer.start_span(
            f"{method} {route}",
            context=parent_context(headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": scope["path"],
                SPAN_KIND: CHAIN,
            },
        )
        scope.setdefault("state", {})["trace_context"] = carrier(span)

        async def traced_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                    span.set_attribute("error.type", str(status))
            await send(message)

        try:
            await self.app(scope, receive, traced_send)
        except BaseException as exc:
            end_span(span, exc)
            raise
        span.end()
