"""A job's stage events as the trace page reads them (workers/stage_events.py): each
stage with its detail and the engine calls made under its index; every piece bounded,
a whole job under its byte limit; engine-call outputs of a think job without thoughts.

The strategy runs go through the real pipeline and worker loop on the `ScriptedEngine`
double (tests/doubles.py), whose outputs are written to order: a think output with its
thought, a vote's answers."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from contract.schemas import SolveRequest, Strategy, TraceEvent
from jobqueue.memory import InProcessQueue
from tests.doubles import ScriptedEngine
from workers.engines.base import Completion, GenerationRequest
from workers.job_sink import EngineCall
from workers.loop import run_job
from workers.pipeline import SolvePipeline
from workers.stage_events import MAX_ITEMS, MAX_JOB_BYTES, MAX_TEXT_CHARS, StageEvents, bounded

THOUGHT = "a secret line of reasoning"
THINK = f"Here is my thought process: {THOUGHT}. Here is my response: \\boxed{{4}}"


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


def _run(tokenizer: Any, rules: list[Any], request: SolveRequest) -> list[dict[str, Any]]:
    """Run one job through the worker loop; its published events."""

    async def go() -> list[dict[str, Any]]:
        queue = InProcessQueue()
        await queue.submit(request)
        job = await queue.claim(1)
        assert job is not None
        engine = ScriptedEngine(tokenizer, rules, ("policy", "asker", "truster"))
        await run_job(queue, SolvePipeline(engine), job)
        return await queue.history(job.id)

    return asyncio.run(go())


def test_strings_lists_and_mappings_are_cut_and_json_safe() -> None:
    value = {
        "text": "x" * (MAX_TEXT_CHARS + 10),
        "items": list(range(MAX_ITEMS + 3)),
        "votes": {str(i): 1 for i in range(MAX_ITEMS + 2)},
        "confidence": -math.inf,
        "nested": [[[[[[[[[["deep"]]]]]]]]]],
    }
    cut = bounded(value)
    assert cut["text"].endswith("(10 more characters)")
    assert cut["items"][-1] == "… 3 more" and len(cut["items"]) == MAX_ITEMS + 1
    assert cut["votes"]["…"] == "2 more"
    assert cut["confidence"] is None
    json.loads(json.dumps(cut, allow_nan=False))  # a browser's JSON.parse reads it


def _call(stage: int, texts: list[str]) -> EngineCall:
    request = GenerationRequest(messages=[{"role": "user", "content": "q"}], role="policy")
    return EngineCall(stage, request, Completion(texts, [[1, 2]] * len(texts), 5, ["stop"]))


def test_calls_go_with_the_stage_of_their_index_and_a_job_stays_under_its_limit() -> None:
    stages = StageEvents(SolveRequest(problem="2 + 2?"))
    stages.on_engine_call(_call(0, ["4"]))
    stages.on_engine_call(_call(1, ["five"]))
    first = stages.event(TraceEvent(stage="generate", detail={"answers": ["4"]}))
    assert first["index"] == 0 and first["detail"] == {"answers": ["4"]}
    assert [c["outputs"] for c in first["calls"]] == [["4"]]
    assert first["calls"][0]["role"] == "policy" and first["calls"][0]["completion_tokens"] == 2
    second = stages.event(TraceEvent(stage="selfcorrect"))
    assert second["index"] == 1 and [c["outputs"] for c in second["calls"]] == [["five"]]

    big = {"outputs": ["y" * MAX_TEXT_CHARS] * MAX_ITEMS}
    sizes, truncated = 0, None
    for _ in range(MAX_JOB_BYTES // (MAX_TEXT_CHARS * MAX_ITEMS) + 3):
        event = stages.event(TraceEvent(stage="generate", detail=big))
        if event.get("truncated"):
            truncated = event
            break
        sizes += len(json.dumps(event))
    assert truncated is not None and sizes <= MAX_JOB_BYTES + 4096
    assert truncated["detail"] == {} and truncated["stage"] == "generate"


def test_a_vote_publishes_every_stage_with_its_calls_and_the_votes(tokenizer: Any) -> None:
    request = SolveRequest(
        problem="What is 2 + 2?", strategy=Strategy(tools="never", samples=3, stop="none")
    )
    outputs = ["\\boxed{4}", "\\boxed{4}", "\\boxed{5}"]
    events = _run(tokenizer, [("What is 2 + 2?", outputs)], request)
    stages = [e for e in events if e["type"] == "stage"]
    assert [e["stage"] for e in stages] == ["generate", "select"]
    assert [e["index"] for e in stages] == [0, 1]
    generate, select = stages
    assert sorted(generate["detail"]["answers"]) == ["4", "4", "5"]
    assert len(generate["calls"]) == 3  # one request per sample of a raced vote
    assert sorted(o for c in generate["calls"] for o in c["outputs"]) == sorted(outputs)
    assert select["detail"]["votes"] == {"4": 2, "5": 1}
    assert select["detail"]["stop"]["used"] == 3 and select["calls"] == []


def test_think_outputs_never_carry_the_thought(tokenizer: Any) -> None:
    for reveal in (False, True):
        request = SolveRequest(
            problem="What is 2 + 2?",
            strategy=Strategy(tools="never", think=True),
            reveal_thoughts=reveal,
        )
        [generate] = [
            e for e in _run(tokenizer, [("2 + 2", THINK)], request) if e["type"] == "stage"
        ]
        outputs = [o for call in generate["calls"] for o in call["outputs"]]
        assert outputs == ["\\boxed{4}"], outputs
        assert THOUGHT not in json.dumps(generate["calls"])
        # The detail holds the thought only when the request may reveal it (the
        # gateway hides it again from a reader without the scope).
        assert ("thoughts" in generate["detail"]) is reveal
