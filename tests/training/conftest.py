"""Small real traces for the builder and trainer tests: jobs run through the real queue,
worker loop, pipeline, tool servers (python) and trace sink.

Test double (named): `ScriptedEngine` (tests/doubles.py) writes the outputs, because
the labels under test (easy/hard, fix/kept-correct, refine/no-refine, preference)
depend on answers being right or wrong on cue, which a random-weight model cannot do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from contract.schemas import JobState, SolveRequest, Strategy
from jobqueue.memory import InProcessQueue
from tests.doubles import Rule, ScriptedEngine
from workers import traces
from workers.loop import run_worker
from workers.models.tiny import TinyModel
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.tools.client import ToolClient

DIRECT = "Reason step by step, then give your final answer in \\boxed{}.\n\n"
ADAPTIVE = "\n\nIf you don't know the answer"
CALL = (
    '{"name": "write_and_run_code", "parameters": {"thought": "multiply", '
    '"code": "print(123 * 457)"}}'
)
ANSWER = (
    '{"name": "answer_question", "parameters": {"thought": "the tool printed it", '
    '"sloving_process": "123 * 457 = 56211 by the tool.", "answer": "56211"}}'
)
THINK_RIGHT = "Here is my thought process: 2 and 2 make 4. Here is my response: \\boxed{4}"
THINK_WRONG = "Here is my thought process: 2 and 2 make 5. Here is my response: \\boxed{5}"

RULES: list[Rule] = [
    # TPO: the greedy sample is right, the sampled one wrong.
    ("User query: Please answer", [THINK_RIGHT, THINK_WRONG]),
    # AWL: 2 + 2 is easy (3 of 4 direct samples right), 123 * 457 is hard (none right,
    # the python tool solves it).
    (f"{DIRECT}What is 2 + 2?", ["2 + 2 = 4. \\boxed{4}", "\\boxed{4}", "\\boxed{4}", "5"]),
    (f"What is 2 + 2?{ADAPTIVE}", '{"name": "answer_question", "parameters": {"answer": "4"}}'),
    (f"{DIRECT}What is 123 * 457?", "\\boxed{100}"),
    (f"What is 123 * 457?{ADAPTIVE}", CALL),
    ("56211", ANSWER),
    # SCoRe: 3 + 3 is fixed by the second attempt; 5 + 5 stays right.
    ("There might be an error", ["Corrected: \\boxed{6}", "Still: \\boxed{10}"]),
    (f"{DIRECT}What is 3 + 3?", "\\boxed{7}"),
    (f"{DIRECT}What is 5 + 5?", "\\boxed{10}"),
    # ART: 1 + 1 starts right (the refine breaks it), 7 + 7 starts wrong (the refine fixes it).
    ("Problem:\nWhat is 1 + 1?", "Q: What is 1 + 1?\nRefine: yes"),
    ("Problem:\nWhat is 7 + 7?", "Q: What is 7 + 7?\nRefine: yes"),
    ("Q: What is 1 + 1?", "Refined: \\boxed{3}"),
    ("Q: What is 7 + 7?", "Refined: \\boxed{14}"),
    ("Which solution is correct?", "Solution 1"),
    (f"{DIRECT}What is 1 + 1?", "\\boxed{2}"),
    (f"{DIRECT}What is 7 + 7?", "\\boxed{15}"),
]


def requests() -> list[SolveRequest]:
    def never(**fields: Any) -> Strategy:
        # Training data wants every sample: a vote that stops once decided would keep
        # only those it needed (AWL's easy/hard rule counts all K).
        return Strategy(tools="never", stop="none", **fields)

    made = [
        SolveRequest(problem="What is 2 + 2?", reference="4", strategy=never(samples=4)),
        SolveRequest(problem="What is 2 + 2?", reference="4", tools=["python"]),
        SolveRequest(
            problem="What is 123 * 457?", reference="56211", strategy=never(samples=4)
        ),
        SolveRequest(problem="What is 123 * 457?", reference="56211", tools=["python"]),
        SolveRequest(problem="What is 3 + 3?", reference="6", strategy=never(attempts=2)),
        SolveRequest(problem="What is 5 + 5?", reference="10", strategy=never(attempts=2)),
        SolveRequest(problem="What is 1 + 1?", reference="2", strategy=never(art=True)),
        SolveRequest(problem="What is 7 + 7?", reference="14", strategy=never(art=True)),
        SolveRequest(
            problem="What is 2 + 2?", reference="4", reveal_thoughts=True,
            strategy=never(think=True, samples=2),
        ),
        SolveRequest(
            problem="What is 2 + 2?", reference="4",
            strategy=never(think=True, samples=2),
        ),
    ]  # fmt: skip
    return made


def collect(
    tokenizer: Any, tool_urls: dict[str, str], requests: Sequence[SolveRequest], out: Path
) -> list[Any]:
    """Run the requests one at a time (the scripted outputs cycle in order) through the
    real loop with a sink on `out`."""

    async def go() -> list[Any]:
        engine = ScriptedEngine(tokenizer, RULES)
        tools = ToolClient(tool_urls, attempts=1)
        pipeline = SolvePipeline(engine, PipelineOptions(sample_temperature=0.7), tools)
        queue = InProcessQueue()
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(queue, pipeline, concurrency=1, stop=stop))
        statuses = []
        for request in requests:
            job_id = await queue.submit(request)
            statuses.append(await queue.wait(job_id, timeout=30))
        stop.set()
        await asyncio.wait_for(worker, 30)
        await pipeline.aclose()
        return statuses

    traces.configure(traces.TraceSink(out))
    try:
        return asyncio.run(go())
    finally:
        traces.configure(None)


@pytest.fixture(scope="session")
def trace_dir(
    tiny_model: TinyModel, tool_servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
    out = tmp_path_factory.mktemp("traces")
    statuses = collect(tokenizer, tool_servers, requests(), out)
    failed = [(s.id, s.error) for s in statuses if s.status != JobState.succeeded]
    assert not failed, failed
    return out
