"""Shared pieces of the strategy tests: the tiny model's real tokenizer, and a helper
that runs one request through a `SolvePipeline` on the `ScriptedEngine` double."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from contract.schemas import SolveRequest, SolveResult, TraceEvent
from tests.doubles import Rule, ScriptedEngine
from workers.job_sink import JobSink
from workers.models.tiny import TinyModel
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.tools.client import ToolClient

Solve = Callable[..., tuple[SolveResult, ScriptedEngine, list[TraceEvent]]]


@pytest.fixture(scope="session")
def tokenizer(tiny_model: TinyModel) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


@pytest.fixture()
def solve(tokenizer: Any) -> Solve:
    """`solve(rules, problem=..., strategy=..., tool_urls=..., roles=..., pipeline_options=...,
    **request)` →
    (result, engine, progress events). Trace is always requested."""

    def run(
        rules: Sequence[Rule],
        *,
        tool_urls: dict[str, str] | None = None,
        roles: Sequence[str] = ("policy", "asker", "truster"),
        pipeline_options: PipelineOptions | None = None,
        **fields: Any,
    ) -> tuple[SolveResult, ScriptedEngine, list[TraceEvent]]:
        engine = ScriptedEngine(tokenizer, rules, roles)
        fields.setdefault("problem", "What is 2 + 2?")
        fields.setdefault("return_trace", True)
        request = SolveRequest(**fields)
        events: list[TraceEvent] = []

        class Listener(JobSink):
            async def on_stage(self, event: TraceEvent) -> None:
                events.append(event)

        async def go() -> SolveResult:
            tools = ToolClient(tool_urls, attempts=1) if tool_urls is not None else None
            pipeline = SolvePipeline(engine, pipeline_options or PipelineOptions(), tools)
            try:
                return await pipeline.solve("job-1", request, Listener())
            finally:
                await pipeline.aclose()

        return asyncio.run(go()), engine, events

    return run
