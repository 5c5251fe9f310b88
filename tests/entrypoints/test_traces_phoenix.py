# mypy: disable-error-code="index"
"""One job's OpenTelemetry trace in a real viewer: Arize Phoenix (the `phoenix` session
fixture, its own process and venv) receives the spans of a `samples: 3` job with tools on
the tiny model, and we read them back through Phoenix's client.

The service is the embedded one with the OTEL_* variables set: the gateway, the worker
and the real vLLM engine in this process, the python tool server as its own process, all
exporting OTLP over HTTP to Phoenix. The request carries a `traceparent`, so the whole
job must land in that one trace: the gateway's request span, the queue wait, the job,
the vote and its samples, each stage, each engine call (with vLLM's own `llm_request`
span under it) and each tool call (with the tool server's span under it).

Test double (named): `ForcedToolCall` passes every request to the real vLLM engine and
only adds a JSON schema to the adaptive prompt's first turn, so vLLM's structured
outputs make the random-weight tiny model call the python tool (it never would on its
own). Everything after that, the tool run, its result fed back and the continuation, is
the real thing.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace

from entrypoints.embedded import EmbeddedServer, ServiceProcesses, free_port
from tests.conftest import (
    Phoenix,
    _import_vllm,
    api_key_headers,
    tiny_pool_env,
    tiny_settings,
)
from workers.engines.base import Completion, GenerationRequest
from workers.engines.factory import build_engine
from workers.models.tiny import TinyModel
from workers.prompts import AWL_TOOL_DECISION

CODE = "print(6 * 7)"
CALL_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"enum": ["write_and_run_code"]},
        "parameters": {
            "type": "object",
            "properties": {"code": {"enum": [CODE]}},
            "required": ["code"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "parameters"],
    "additionalProperties": False,
}
TRACE_ID = "5ce1e17c0ffee0000000000000000025"
CALLER_SPAN = "00000000000c411e"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
SAMPLES = 3


class ForcedToolCall:
    """The real engine; the adaptive prompt's first output must be the python call."""

    def __init__(self, engine: Any):
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return list(await self.engine.generate([self._forced(r) for r in requests]))

    @staticmethod
    def _forced(request: GenerationRequest) -> GenerationRequest:
        last = request.messages[-1] if request.messages else None
        if last is not None and last["role"] == "user" and AWL_TOOL_DECISION in last["content"]:
            return dataclasses.replace(request, json_schema=CALL_SCHEMA)
        return request


@pytest.fixture(scope="module")
def traced_service(
    tiny_model: TinyModel, phoenix: Phoenix, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedServer]:
    """The embedded service and a python tool-server process, exporting to Phoenix."""
    _import_vllm()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach Phoenix soon after they end
    }
    token = secrets.token_urlsafe(32)
    tools = ServiceProcesses(tmp_path_factory.mktemp("traced-tools"), otel)
    with pytest.MonkeyPatch.context() as env:
        for name, value in otel.items():
            env.setenv(name, value)
        # vLLM writes these two for its engine process; they go when the module ends.
        env.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        env.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
        env.delenv("OTEL_SERVICE_NAME", raising=False)
        try:
            _, python_url = tools.start_tool_server("python", token=token)
            settings = tiny_settings(
                tiny_model,
                port=free_port(),
                tool_urls={"python": python_url},
                tool_token=token,
                trace_content=True,
            )
            engine = ForcedToolCall(build_engine(settings))
            with EmbeddedServer(settings, ready_timeout_s=480, engine=engine) as server:
                yield server
        finally:
            tools.stop_all()


class Tree:
    """Phoenix's spans of one trace, by id and parent."""

    def __init__(self, spans: list[dict[str, Any]]):
        self.spans = spans

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"] == name]

    def one(self, name: str) -> dict[str, Any]:
        [span] = self.named(name)
        return span

    def children(self, span: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["parent_id"] == span["context"]["span_id"]]


def read_trace(
    phoenix: Phoenix, service: EmbeddedServer | None, complete: Any, trace_id: str = TRACE_ID
) -> Tree:
    """The trace once `complete(tree)` holds, polling Phoenix for up to a minute (the
    exporters batch their spans)."""
    if service is not None:
        service.app.state.telemetry.flush()
        flush_vllm = getattr(trace.get_tracer_provider(), "force_flush", None)  # vLLM's
        if flush_vllm is not None:
            flush_vllm()
    deadline = time.monotonic() + 60
    while True:
        tree = Tree(phoenix.spans(trace_id))
        if complete(tree) or time.monotonic() > deadline:
            return tree
        time.sleep(1)


def test_a_vote_with_tools_is_one_trace_in_phoenix(
    traced_service: EmbeddedServer, phoenix: Phoenix
) -> None:
    body = {
        "problem": "What is 6 * 7?",
        "tools": ["python"],
        "answer_type": "number",
        "strategy": {"samples": SAMPLES, "stop": "none"},
        "max_tokens": 96,
        "return_trace": True,
    }
    with traced_service.client() as client:
        response = client.post("/solve", json=body, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200, response.text
    result = response.json()
    usage = result["usage"]
    assert result["used_tools"] == ["write_and_run_code"]
    calls = [c for sample in result["trace"][0]["detail"]["tool_calls"] for c in sample]
    assert len(calls) == SAMPLES and all(c["result"]["stdout"] == "42\n" for c in calls)

    def complete(tree: Tree) -> bool:
        llm = [s for s in tree.spans if s["span_kind"] == "LLM" and s["name"].startswith("chat")]
        return (
            len(llm) == usage["engine_calls"]
            and len(tree.named("llm_request")) == usage["engine_calls"]
            and len(tree.named("POST /invoke")) == SAMPLES
            and bool(tree.named("POST /solve"))
            and bool(tree.named("job"))
        )

    tree = read_trace(phoenix, traced_service, complete)
    names = sorted(s["name"] for s in tree.spans)
    assert complete(tree), names
    assert {s["context"]["trace_id"] for s in tree.spans} == {TRACE_ID}  # one trace

    # The gateway's span continues the caller's; the queue wait and the job hang under it.
    request = tree.one("POST /solve")
    assert request["parent_id"] == CALLER_SPAN
    assert request["attributes"]["http.response.status_code"] == 200
    assert sorted(s["name"] for s in tree.children(request)) == ["job", "queue wait"]
    job = tree.one("job")
    assert job["span_kind"] == "CHAIN"
    assert job["attributes"]["sciserve.outcome"] == "succeeded"
    assert job["attributes"]["sciserve.strategy.samples"] == SAMPLES
    assert sorted(s["name"] for s in tree.children(job)) == ["select", "vote"]
    vote = tree.one("vote")
    samples = tree.children(vote)
    assert sorted(s["attributes"]["sciserve.sample.index"] for s in samples) == [0, 1, 2]
    assert vote["attributes"]["sciserve.vote.used"] == SAMPLES

    # Each sample: generate, its engine calls (vLLM's span under each) and the tool call
    # (the tool server's span under it, from its own process).
    for sample in samples:
        [generate] = tree.children(sample)
        assert generate["name"] == "generate"
        assert generate["attributes"]["sciserve.tool_decisions"] == ["tool"]
        steps = tree.children(generate)
        tools = [s for s in steps if s["span_kind"] == "TOOL"]
        llm = [s for s in steps if s["span_kind"] == "LLM"]
        assert [t["name"] for t in tools] == ["execute_tool write_and_run_code"]
        assert len(llm) >= 2  # the call, and the turn after its result
        [tool] = tools
        assert tool["attributes"]["gen_ai.operation.name"] == "execute_tool"
        assert tool["attributes"]["gen_ai.tool.name"] == "write_and_run_code"
        assert CODE in tool["attributes"]["gen_ai.tool.call.arguments"]  # content on
        assert "42" in tool["attributes"]["gen_ai.tool.call.result"]
        assert [s["name"] for s in tree.children(tool)] == ["POST /invoke"]
        for call in llm:
            assert [s["name"] for s in tree.children(call)] == ["llm_request"]

    # GenAI attributes on every engine call, and their tokens are the response's usage.
    llm = [s for s in tree.spans if s["name"].startswith("chat ")]
    assert len(llm) == usage["engine_calls"]
    for call in llm:
        attributes = call["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "vllm"
        assert attributes["gen_ai.request.model"] == "policy"  # the role's adapter
        assert attributes["gen_ai.request.max_tokens"] <= 96
        assert "gen_ai.request.temperature" in attributes
        assert attributes["gen_ai.response.finish_reasons"]
        assert "What is 6 * 7?" in attributes["gen_ai.input.messages"]  # content on
    assert sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in llm) == usage["prompt_tokens"]
    assert (
        sum(s["attributes"]["gen_ai.usage.output_tokens"] for s in llm)
        == usage["completion_tokens"] + usage["thought_tokens"]
    )
    select = tree.one("select")
    assert select["attributes"]["sciserve.vote.stop.rule"] == "none"
    assert select["attributes"]["sciserve.vote.method"] in ("vote", "greedy", "first", "tie")
    folder = os.environ.get("SCISERVE_SCREENSHOT_DIR")
    if folder:  # the README's picture of this job in Phoenix (headless Chromium)
        screenshot(phoenix, llm[0], Path(folder) / "phoenix-trace.png")


def screenshot(phoenix: Phoenix, span: dict[str, Any], path: Path) -> None:
    """Phoenix's page of the trace, with `span` open, as a PNG."""
    [project] = httpx.get(f"{phoenix.url}/v1/projects", timeout=30).json()["data"]
    url = (
        f"{phoenix.url}/projects/{project['id']}/traces/{TRACE_ID}?selectedSpanNodeId={span['id']}"
    )
    subprocess.run(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1600,1000", "--virtual-time-budget=20000", f"--screenshot={path}", url],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    assert path.stat().st_size > 10_000


def test_a_pools_gateway_and_worker_spans_join_one_trace_across_redis(
    tiny_model: TinyModel, phoenix: Phoenix, redis_prefix: str, tmp_path: Path
) -> None:
    """`sciserve gateway` and `sciserve worker` as their own processes on Redis (the
    worker on the transformers engine): the job carries the gateway's context through
    Redis, so the worker's spans hang under the gateway's request span."""
    trace_id = "5ce1e17c0ffee0000000000000000026"
    processes = ServiceProcesses(
        tmp_path,
        {
            **tiny_pool_env(tiny_model, redis_prefix),
            "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    try:
        _, gateway = processes.start("gateway")
        processes.start("worker")
        headers = {
            **api_key_headers(redis_prefix, "solve"),
            "traceparent": f"00-{trace_id}-{CALLER_SPAN}-01",
        }
        body = {"problem": "What is 2 + 2?", "strategy": {"tools": "never"}, "max_tokens": 8}
        response = httpx.post(f"{gateway}/solve", json=body, headers=headers, timeout=300)
        assert response.status_code == 200, response.text
        usage = response.json()["usage"]

        def complete(tree: Tree) -> bool:
            return bool(tree.named("POST /solve") and tree.named("job") and tree.named("generate"))

        tree = read_trace(phoenix, None, complete, trace_id)
    finally:
        processes.stop_all()
    assert complete(tree), sorted(s["name"] for s in tree.spans)
    request, job = tree.one("POST /solve"), tree.one("job")
    assert request["parent_id"] == CALLER_SPAN
    assert job["parent_id"] == request["context"]["span_id"]  # across Redis
    assert tree.one("queue wait")["parent_id"] == request["context"]["span_id"]
    [call] = [s for s in tree.spans if s["span_kind"] == "LLM"]
    assert call["attributes"]["gen_ai.provider.name"] == "transformers"
    assert call["attributes"]["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert call["attributes"]["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert "gen_ai.input.messages" not in call["attributes"]  # content off by default
