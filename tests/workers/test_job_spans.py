# mypy: disable-error-code="index, union-attr, misc, arg-type, operator, type-var, call-overload"
"""A job's OpenTelemetry spans (workers/job_spans.py), read from the SDK's in-memory
exporter: the tree under the request's context, GenAI attributes and token counts that
add up to the job's usage, tool-call spans, and what content a span may hold.

Model output decides the branches (a tool call, a vote), so the engine is the named
`ScriptedEngine` double over the tiny model's real tokenizer; tool calls go over real
HTTP to the real tool-server processes. The same job against a real viewer (Phoenix) on
the real vLLM engine is tests/entrypoints/test_traces_phoenix.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from contract.errors import AdapterError
from contract.schemas import SolveRequest, SolveResult
from contract.telemetry import SPAN_KIND, Telemetry, carrier
from jobqueue.protocol import Job
from tests.doubles import Rule, ScriptedEngine
from workers import job_spans
from workers.job_sink import JobSink
from workers.models.tiny import TinyModel
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.prompts import AWL_TOOL_DECISION
from workers.tools.client import ToolClient

NEVER = {"tools": "never"}
CONTENT_KEYS = {"input.value", "output.value", "gen_ai.input.messages", "gen_ai.output.messages",
                "sciserve.answers", "sciserve.answer"}  # fmt: skip
SECRET = "the hidden thought says 17"
THINK_OUTPUT = f"Here is my thought process: {SECRET}. Here is my response: \\boxed{{4}}"
RUN_CODE = json.dumps(
    {"name": "write_and_run_code", "parameters": {"thought": "", "code": "print(6 * 7)"}}
)
FINAL = json.dumps(
    {
        "name": "answer_question",
        "parameters": {"thought": "", "sloving_process": "It printed 42.", "answer": "42"},
    }
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model: TinyModel) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


class Traced:
    """One job run under an in-memory tracer, with the finished spans."""

    def __init__(
        self, result: SolveResult | None, spans: Sequence[ReadableSpan], error: Exception | None
    ):
        self._result = result
        self.spans = list(spans)
        self.error = error

    @property
    def result(self) -> SolveResult:
        assert self._result is not None, self.error
        return self._result

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def children(self, span_id: int) -> list[ReadableSpan]:
        return [s for s in self.spans if s.parent is not None and s.parent.span_id == span_id]

    def kind(self, kind: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.attributes.get(SPAN_KIND) == kind]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span


def run(
    tokenizer: Any,
    rules: Sequence[Rule],
    *,
    content: bool = False,
    tool_urls: dict[str, str] | None = None,
    **fields: Any,
) -> Traced:
    """The job under a stand-in request span whose context it carries, as the gateway's
    would be; the spans of both come back from the in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(provider=provider, content=content)
    request_span = telemetry.tracer("test").start_span("POST /solve")
    fields.setdefault("problem", "What is 2 + 2?")
    submitted = time.time() - 0.25
    job = Job(
        id="job-1",
        request=SolveRequest(**fields),
        deadline=submitted + 60,
        submitted_at=submitted,
        trace_context=carrier(request_span),
    )

    async def go() -> SolveResult:
        tools = ToolClient(tool_urls, attempts=1) if tool_urls is not None else None
        engine = ScriptedEngine(tokenizer, rules)
        pipeline = SolvePipeline(engine, PipelineOptions(), tools, telemetry)
        try:
            return await job_spans.solve(pipeline, job, JobSink())
        finally:
            await pipeline.aclose()

    result, error = None, None
    try:
        result = asyncio.run(go())
    except Exception as exc:
        error = exc
    request_span.end()
    return Traced(result, exporter.get_finished_spans(), error)


def test_a_vote_is_one_tree_whose_llm_spans_add_up_to_the_usage(tokenizer: Any) -> None:
    outputs = ["\\boxed{4}", "\\boxed{4}", "\\boxed{5}"]
    strategy = {**NEVER, "samples": 3, "stop": "none"}
    traced = run(tokenizer, [("2 + 2", outputs)], strategy=strategy, seed=11)
    usage = traced.result.usage
    assert len({s.context.trace_id for s in traced.spans}) == 1  # one trace
    request = traced.one("POST /solve")
    job, wait = traced.one("job"), traced.one("queue wait")
    assert {s.name for s in traced.children(request.context.span_id)} == {"queue wait", "job"}
    assert wait.end_time == job.start_time and wait.start_time < wait.end_time
    assert [s.name for s in traced.children(job.context.span_id)] == ["vote", "select"]
    vote = traced.one("vote")
    samples = traced.children(vote.context.span_id)
    assert sorted(s.attributes["sciserve.sample.index"] for s in samples) == [0, 1, 2]
    llm = traced.kind("LLM")
    for sample in samples:
        [generate] = traced.children(sample.context.span_id)
        assert generate.name == "generate" and generate.attributes[SPAN_KIND] == "CHAIN"
        [call] = traced.children(generate.context.span_id)
        assert call in llm and call.name == "chat policy"
    # GenAI attributes on every engine call; their tokens are the job's usage.
    assert len(llm) == usage.engine_calls == 3
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in llm) == usage.prompt_tokens
    assert (
        sum(s.attributes["gen_ai.usage.output_tokens"] for s in llm)
        == usage.completion_tokens + usage.thought_tokens
    )
    for span in llm:
        attributes = span.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "policy"  # the adapter of the role
        assert attributes["gen_ai.request.max_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    temperatures = sorted(s.attributes["gen_ai.request.temperature"] for s in llm)
    assert temperatures[0] == 0.0 and temperatures[1] > 0  # the greedy sample, then sampled
    # The vote: counts, method and how it stopped.
    select = traced.one("select")
    assert select.attributes["sciserve.vote.method"] == "vote"
    assert select.attributes["sciserve.vote.counts"] == (2, 1)
    assert select.attributes["sciserve.vote.stop.rule"] == "none"
    assert vote.attributes["sciserve.vote.used"] == 3
    assert vote.attributes["sciserve.vote.stopped_early"] is False
    assert job.attributes["sciserve.outcome"] == "succeeded"
    assert job.attributes["sciserve.strategy.samples"] == 3
    assert job.attributes["sciserve.usage.prompt_tokens"] == usage.prompt_tokens
    # Content is off by default: no prompt, output or answer in any span.
    for span in traced.spans:
        assert not CONTENT_KEYS & set(span.attributes)


def test_a_settled_vote_shows_the_samples_it_ran(tokenizer: Any) -> None:
    strategy = {**NEVER, "samples": 3}  # settled; two of three in flight at first
    traced = run(tokenizer, [("2 + 2", "\\boxed{4}")], strategy=strategy)
    vote = traced.one("vote")
    assert vote.attributes["sciserve.vote.stopped_early"] is True
    assert vote.attributes["sciserve.vote.not_started"] == 1
    assert len(traced.children(vote.context.span_id)) == 2
    assert len(traced.kind("LLM")) == traced.result.usage.engine_calls == 2


def test_tool_calls_are_execute_tool_spans_under_their_stage(
    tokenizer: Any, tool_servers: dict[str, str]
) -> None:
    rules = [("42", FINAL), (AWL_TOOL_DECISION, RUN_CODE)]
    traced = run(tokenizer, rules, problem="What is 6 * 7?", tool_urls=tool_servers, content=True)
    assert traced.result.answer == "42"
    job = traced.one("job")
    [generate] = traced.children(job.context.span_id)
    assert generate.name == "generate"
    assert generate.attributes["sciserve.tool_decisions"] == ("tool",)
    assert generate.attributes["sciserve.tool_calls"] == 1
    children = traced.children(generate.context.span_id)
    assert [s.name for s in children] == ["chat policy", "execute_tool write_and_run_code",
                                          "chat policy"]  # fmt: skip
    tool = children[1]
    assert tool.attributes[SPAN_KIND] == "TOOL"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "write_and_run_code"
    assert tool.attributes["sciserve.tool.status_code"] == 200
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"])["code"] == "print(6 * 7)"
    assert "42" in tool.attributes["gen_ai.tool.call.result"]
    assert tool.status.status_code != StatusCode.ERROR
    assert job.attributes["sciserve.used_tools"] == ("write_and_run_code",)
    assert job.attributes["sciserve.answer"] == "42"  # content on


@pytest.mark.parametrize("reveal", [False, True])
def test_hidden_thoughts_stay_out_of_spans_unless_the_job_may_reveal_them(
    tokenizer: Any, reveal: bool
) -> None:
    strategy = {**NEVER, "think": True}
    traced = run(
        tokenizer, [("2 + 2", THINK_OUTPUT)], strategy=strategy, content=True,
        reveal_thoughts=reveal,
    )  # fmt: skip
    assert traced.result.answer == "4"
    [call] = traced.kind("LLM")
    assert "2 + 2" in call.attributes["gen_ai.input.messages"]  # content on: the prompt
    everything = json.dumps([dict(s.attributes) for s in traced.spans], default=str)
    if reveal:
        assert SECRET in call.attributes["gen_ai.output.messages"]
    else:
        assert SECRET not in everything
        assert call.attributes[job_spans.WITHHELD] == "hidden thoughts"
        assert "gen_ai.output.messages" not in call.attributes
    assert SECRET not in traced.one("job").attributes["output.value"]


def test_a_failed_job_ends_its_span_with_the_outcome(tokenizer: Any) -> None:
    traced = run(tokenizer, [], strategy=NEVER, adapters={"policy": "missing"})
    assert isinstance(traced.error, AdapterError)
    job = traced.one("job")
    assert job.status.status_code == StatusCode.ERROR
    assert job.attributes["sciserve.outcome"] == traced.error.outcome.value
    assert job.attributes["error.type"] == "AdapterError"


def test_traces_off_make_no_spans_and_the_same_result(tokenizer: Any) -> None:
    engine = ScriptedEngine(tokenizer, [("2 + 2", "\\boxed{4}")])
    pipeline = SolvePipeline(engine, PipelineOptions())
    job = Job(id="j", request=SolveRequest(problem="What is 2 + 2?", strategy=NEVER),
              deadline=time.time() + 60)  # fmt: skip
    assert not pipeline.telemetry.enabled
    result = asyncio.run(job_spans.solve(pipeline, job, JobSink()))
    assert result.answer == "4" and not engine.calls[0].trace_headers
