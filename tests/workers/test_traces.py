"""The trace sink: one versioned record per succeeded job, written by the worker loop,
with every stage's prompts and outputs; files rotate by size; hidden thoughts are
written only for jobs that may reveal them.

Test double (named): `ScriptedEngine` (tests/doubles.py), because the outputs must
carry a TPO thought and a known answer, which a random-weight model cannot be made to
write. The queue, loop, pipeline, tokenizer and sink are real.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from contract.schemas import JobState, SolveRequest
from jobqueue.memory import InProcessQueue
from tests.doubles import Rule, ScriptedEngine
from workers import traces
from workers.loop import run_worker
from workers.pipeline import SolvePipeline

THINK = "Here is my thought process: SECRET-PLAN add them. Here is my response: \\boxed{4}"


@pytest.fixture()
def tokenizer(tiny_model: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


@pytest.fixture()
def sink_dir(tmp_path: Path) -> Iterator[Path]:
    traces.configure(traces.TraceSink(tmp_path / "traces", max_bytes=4096))
    yield tmp_path / "traces"
    traces.configure(None)


def run_jobs(engine: ScriptedEngine, requests: Sequence[SolveRequest]) -> list[Any]:
    """Run requests through the real loop; stop it with a drain so records are written."""

    async def go() -> list[Any]:
        queue = InProcessQueue()
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_worker(queue, SolvePipeline(engine), concurrency=4, stop=stop)
        )
        ids = [await queue.submit(r) for r in requests]
        statuses = [await queue.wait(job_id, timeout=10) for job_id in ids]
        stop.set()
        await asyncio.wait_for(worker, 10)
        return statuses

    return asyncio.run(go())


def read_records(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("traces-*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_a_record_holds_request_stages_prompts_outputs_and_correctness(
    tokenizer: Any, sink_dir: Path
) -> None:
    rules: list[Rule] = [
        ("There might be an error", "Let me check: 2 + 2 = 4. \\boxed{4}"),
        ("2 + 2", "2 + 2 = 5. \\boxed{5}"),
    ]
    request = SolveRequest(
        problem="What is 2 + 2?",
        reference="4",
        strategy={"tools": "never", "attempts": 2},  # type: ignore[arg-type]
    )
    [status] = run_jobs(ScriptedEngine(tokenizer, rules), [request])
    assert status.status == JobState.succeeded
    [record] = read_records(sink_dir)
    assert record["format"] == traces.FORMAT and record["version"] == traces.VERSION
    assert record["id"] == status.id
    assert record["request"]["problem"] == "What is 2 + 2?"
    assert record["strategy"]["name"] == "selfcorrect"
    assert record["correct"] is True and record["result"]["initial_answer"] == "5"
    generate, correct = record["stages"][:2]
    assert [generate["stage"], correct["stage"]] == ["generate", "selfcorrect"]
    [call] = generate["calls"]
    assert "What is 2 + 2?" in call["messages"][-1]["content"]
    assert call["outputs"] == ["2 + 2 = 5. \\boxed{5}"]
    assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0
    [second] = correct["calls"]
    assert second["messages"][-2] == {"role": "assistant", "content": "2 + 2 = 5. \\boxed{5}"}
    assert second["outputs"] == ["Let me check: 2 + 2 = 4. \\boxed{4}"]
    assert all(stage["calls"] == [] for stage in record["stages"][2:])
    assert record["usage"]["prompt_tokens"] == call["prompt_tokens"] + second["prompt_tokens"]


def test_thoughts_are_written_only_when_the_request_may_reveal_them(
    tokenizer: Any, sink_dir: Path
) -> None:
    engine = ScriptedEngine(tokenizer, [("2 + 2", THINK)])
    strategy = {"tools": "never", "think": True}
    hidden = SolveRequest(problem="What is 2 + 2?", strategy=strategy)  # type: ignore[arg-type]
    shown = hidden.model_copy(update={"reveal_thoughts": True})
    statuses = run_jobs(engine, [hidden, shown])
    assert all(s.status == JobState.succeeded for s in statuses)
    records = {r["request"]["reveal_thoughts"]: r for r in read_records(sink_dir)}
    hidden_text = json.dumps(records[False])
    assert "SECRET-PLAN" not in hidden_text
    assert records[False]["stages"][0]["calls"][0]["outputs"] == ["\\boxed{4}"]
    assert records[False]["thoughts"] is None and records[False]["thoughts_revealed"] is False
    assert records[True]["stages"][0]["calls"][0]["outputs"] == [THINK]
    assert "SECRET-PLAN" in records[True]["thoughts"]


def test_files_rotate_by_size_and_no_record_is_split(tmp_path: Path) -> None:
    sink = traces.TraceSink(tmp_path, max_bytes=2048)
    record = {"format": traces.FORMAT, "version": traces.VERSION, "pad": "x" * 600}
    paths = [sink.write({**record, "n": n}) for n in range(10)]
    files = sorted(tmp_path.glob("traces-*.jsonl"))
    assert len(files) == len(set(paths)) >= 3
    assert all(path.stat().st_size <= 2048 for path in files)
    numbers = [json.loads(line)["n"] for f in files for line in f.read_text().splitlines()]
    assert numbers == list(range(10))
    # A new sink on the same folder (a restarted worker) starts its own file.
    again = traces.TraceSink(tmp_path, max_bytes=2048).write(record)
    assert again not in paths


def test_no_sink_writes_nothing_and_keeps_no_calls(tokenizer: Any, tmp_path: Path) -> None:
    traces.configure(None)
    assert traces.recorder() is None  # a job's sink then keeps none of its calls
    engine = ScriptedEngine(tokenizer, [("2 + 2", "\\boxed{4}")])
    [status] = run_jobs(engine, [SolveRequest(problem="What is 2 + 2?")])
    assert status.status == JobState.succeeded
    assert not list(tmp_path.rglob("*.jsonl"))


def test_the_embedded_service_on_vllm_writes_a_record_per_solve(
    service: Any, tmp_path: Path
) -> None:
    """The real path: HTTP /solve → queue → worker loop → vLLM engine → sink."""
    traces.configure(traces.TraceSink(tmp_path))
    try:
        with service.client() as client:
            response = client.post(
                "/solve",
                json={
                    "problem": "What is 2 + 2?",
                    "reference": "4",
                    "strategy": {"tools": "never"},
                },
            )
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10  # the record is written just after the result
        while not list(tmp_path.glob("traces-*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        traces.configure(None)
    [record] = read_records(tmp_path)
    body = response.json()
    assert record["id"] == body["id"] and record["correct"] == body["correct"]
    [call] = record["stages"][0]["calls"]
    assert call["role"] == "policy" and "What is 2 + 2?" in call["messages"][-1]["content"]
    assert call["outputs"] == [body["answer_text"]]  # a direct answer is served whole
    assert record["usage"] == body["usage"]
