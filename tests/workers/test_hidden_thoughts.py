# mypy: disable-error-code="union-attr, index"
"""A TPO output that never writes the response marker is never served as the answer:
the final answer it states is the visible text, alone, and everything else is hidden
and counted as thought tokens; with no readable answer nothing is visible
(workers/strategies/reading.py `hide_thought`). The result, the answer stream, the
trace record and /v1's `reasoning_tokens` all follow that one rule.

The fixture texts are what the 0.5B demo model writes for TPO's generic prompt when it
forgets the marker. Where a test needs such a known output it uses the
`ScriptedEngine` double (tests/doubles.py), extended here by `StreamingScriptedEngine`
to stream its text in pieces as vLLM does; a random-weight model cannot be made to
write it. The real-engine tests use the tiny model, whose random output almost never
holds the marker: a natural source of format breaks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from prometheus_client import REGISTRY

from contract.answers import extract_answer
from contract.schemas import JobState, SolveRequest, SolveResult
from jobqueue.memory import InProcessQueue
from tests.conftest import Service
from tests.doubles import ScriptedEngine
from workers import traces
from workers.engines.base import Completion, GenerationRequest, Sampling
from workers.loop import run_worker
from workers.pipeline import SolvePipeline
from workers.prompts import (
    RESPONSE_MARKER,
    THOUGHT_MARKER,
    policy_messages,
    score_instruction,
    think_markers,
    think_user_prompt,
)
from workers.strategies.reading import (
    asks_thought_format,
    format_broke,
    hide_thought,
    stated_answer,
)

PROBLEM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?"
)
# The demo model's thought process, no response marker, ending on its answer line.
BROKEN_ANSWERED = (
    "Here is my thought process: 1. Natalia sold 48 clips to her friends in April.\n"
    "2. In May she sold half as many clips as in April, so she sold 48 / 2 = 24 clips.\n"
    "3. To find the total, I add the clips of both months: 48 + 24 = 72.\n"
    "4. Let me double-check: half of 48 is 24, and 48 + 24 is 72, so the numbers agree.\n\n"
    "Therefore, the final answer is \\boxed{72}."
)
# The same, cut off by max_tokens before it stated any answer.
BROKEN_UNANSWERED = (
    "Here is my thought process: 1. First, I need to understand what the question is "
    "asking. The user wants to know how many clips Natalia sold in April and May "
    "together.\n2. Next, I will look at the numbers given in the problem: 48 clips in "
    "April, and half as many in May, which is 48 / 2 = 24.\n3. Then I need to think "
    "about how to combine the two months, so I will add 48 and 24"
)
THOUGHT_WORDS = ("Natalia", "48 / 2", "double-check", "Here is my", "First, I need")
MARKERS = think_markers("generic")


def read_number(text: str) -> str | None:
    return extract_answer(text, "number")


def count_with(tokenizer: Any) -> Any:
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


# --- the rule ------------------------------------------------------------------------
def test_a_break_with_a_stated_answer_shows_that_answer_alone(tokenizer: Any) -> None:
    split = hide_thought(BROKEN_ANSWERED, MARKERS, read_number)
    assert split.format_break and split.visible == "72"
    assert split.thought is not None and split.thought.startswith("1. Natalia sold 48")
    assert split.thought.endswith("\\boxed{72}.")
    count = count_with(tokenizer)
    assert split.thought_tokens(count) == count(BROKEN_ANSWERED) - count("72")


def test_a_break_without_a_readable_answer_shows_nothing(tokenizer: Any) -> None:
    split = hide_thought(BROKEN_UNANSWERED, MARKERS, read_number)
    assert split.format_break and split.visible == ""
    assert split.thought == BROKEN_UNANSWERED[len(THOUGHT_MARKER) :].strip()
    count = count_with(tokenizer)
    assert split.thought_tokens(count) == count(BROKEN_UNANSWERED)


@pytest.mark.parametrize(
    ("text", "answer_type", "expected"),
    [
        ("I add them.\nSo the answer is 72 clips.", "number", "72"),
        ("Comparing the options, the answer is (B).", "choice", "B"),
        ("Answer: \\frac{1}{2}", "expression", "\\frac{1}{2}"),
        # Its last line is only the thought's last line, not a stated answer.
        ("48 + 24 = 72", "number", None),
        ("the answer is unclear to me so far", "number", None),
        (
            '{"name": "answer_question", "parameters": {"thought": "t", '
            '"sloving_process": "48 + 24", "answer": "72"}}',
            "number",
            "72",
        ),
    ],
)
def test_the_stated_answer_is_read_as_the_job_reads_answers(
    text: str, answer_type: str, expected: str | None
) -> None:
    options = ["A", "B", "C", "D"] if answer_type == "choice" else None

    def read(span: str) -> str | None:
        return extract_answer(span, answer_type, options)  # type: ignore[arg-type]

    assert stated_answer(text, read) == expected
    assert hide_thought(text, MARKERS, read).visible == (expected or "")


def test_a_tool_call_in_a_broken_output_stays_for_the_tool_loop() -> None:
    call = {"name": "write_and_run_code", "parameters": {"code": "print(48 + 24)"}}
    text = f"I should compute it.\n{json.dumps(call)}"
    split = hide_thought(text, MARKERS, read_number)
    assert json.loads(split.visible) == call and "I should" not in split.visible


def test_with_the_marker_the_response_after_the_last_one_is_shown(tokenizer: Any) -> None:
    echoed = (
        f"{THOUGHT_MARKER} I answer after “{RESPONSE_MARKER}”, so: 48 + 24 = 72. "
        f"{RESPONSE_MARKER} Natalia sold \\boxed{{72}} clips."
    )
    split = hide_thought(echoed, MARKERS, read_number)
    assert not split.format_break and split.visible == "Natalia sold \\boxed{72} clips."
    assert split.thought is not None and "48 + 24" in split.thought
    hidden = echoed[: echoed.rfind(RESPONSE_MARKER) + len(RESPONSE_MARKER)]
    assert split.thought_tokens(count_with(tokenizer)) == count_with(tokenizer)(hidden)
    specific = hide_thought("Draft: 72. Fine. <R> 72", think_markers("specific"), read_number)
    assert (specific.visible, specific.thought) == ("72", "Draft: 72. Fine.")


def test_a_reply_not_asked_for_the_format_is_shown_whole() -> None:
    split = hide_thought("Corrected: \\boxed{72}", MARKERS, read_number, format_asked=False)
    assert (split.visible, split.thought, split.format_break) == (
        "Corrected: \\boxed{72}",
        None,
        False,
    )
    assert split.thought_tokens(len) == 0


def test_the_think_prompt_is_known_from_the_conversation() -> None:
    first = policy_messages(think_user_prompt(PROBLEM, None))
    assert asks_thought_format(first, "generic")
    assert not asks_thought_format(first, "specific")
    refine = [*first, {"role": "assistant", "content": "72"}]
    refine.append({"role": "user", "content": score_instruction(None)})
    assert not asks_thought_format(refine, "generic") and not asks_thought_format(None, "generic")


# --- result, stream and trace record, on the scripted double -------------------------
class StreamingScriptedEngine(ScriptedEngine):
    """`ScriptedEngine` that streams each one-sample output to `on_text` in 4-character
    pieces, as the vLLM engine does with its deltas."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = await super().generate(requests)
        for request, completion in zip(requests, completions, strict=True):
            if request.on_text is not None and request.n == 1:
                text = completion.texts[0]
                for start in range(0, len(text), 4):
                    await request.on_text(text[start : start + 4])
        return completions


def run_jobs(
    engine: ScriptedEngine, requests: Sequence[SolveRequest]
) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Each request through the real worker loop: its final status and its events."""

    async def go() -> list[tuple[Any, list[dict[str, Any]]]]:
        queue = InProcessQueue()
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_worker(queue, SolvePipeline(engine), concurrency=2, stop=stop)
        )
        ids = [await queue.submit(r) for r in requests]
        done = []
        for job_id in ids:
            status = await queue.wait(job_id, timeout=20)
            done.append((status, [event async for event in queue.events(job_id)]))
        stop.set()
        await asyncio.wait_for(worker, 10)
        return done

    return asyncio.run(go())


def think_request(**fields: Any) -> SolveRequest:
    strategy = {"think": True, "tools": "never"}
    return SolveRequest(problem=PROBLEM, strategy=strategy, return_trace=True, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("output", "visible"), [(BROKEN_ANSWERED, "72"), (BROKEN_UNANSWERED, "")])
def test_a_streamed_break_sends_nothing_the_result_hides(
    tokenizer: Any, output: str, visible: str
) -> None:
    engine = StreamingScriptedEngine(tokenizer, [("Natalia", output)])
    [(status, events)] = run_jobs(engine, [think_request(stream=True)])
    assert status.status == JobState.succeeded
    result: SolveResult = status.result
    deltas = [e["text"] for e in events if e.get("type") == "delta"]
    assert "".join(deltas) == result.answer_text == visible
    assert result.answer == (visible or None) and result.thoughts is None
    assert not any(word in delta for delta in deltas for word in THOUGHT_WORDS)
    detail = result.trace[0].detail
    assert (detail["format_breaks"], detail["format_breaks_after_resample"]) == (1, 1)
    assert detail["format_breaks_unanswered"] == (0 if visible else 1)
    # Both outputs (greedy and resample) are hidden but for the answer each states.
    count = count_with(tokenizer)
    assert result.usage.thought_tokens == 2 * (count(output) - (count(visible) if visible else 0))
    assert result.usage.completion_tokens == 2 * (count(visible) if visible else 0)


def test_revealed_thoughts_of_a_break_are_the_whole_output(tokenizer: Any) -> None:
    engine = ScriptedEngine(tokenizer, [("Natalia", BROKEN_ANSWERED)])
    [(status, _)] = run_jobs(engine, [think_request(reveal_thoughts=True)])
    result: SolveResult = status.result
    assert result.answer_text == "72" and "48 / 2 = 24" in (result.thoughts or "")


def test_the_trace_record_cuts_a_break_as_the_result_does(tokenizer: Any, tmp_path: Path) -> None:
    traces.configure(traces.TraceSink(tmp_path))
    try:
        engine = ScriptedEngine(tokenizer, [("Natalia", BROKEN_ANSWERED)])
        [(status, _)] = run_jobs(engine, [think_request()])
    finally:
        traces.configure(None)
    assert status.status == JobState.succeeded
    [record] = [json.loads(line) for f in tmp_path.glob("*.jsonl") for line in f.open()]
    greedy, resample = record["stages"][0]["calls"]
    assert greedy["outputs"] == resample["outputs"] == [status.result.answer_text] == ["72"]
    assert not any(word in json.dumps(record) for word in ("48 / 2", "double-check"))


# --- the real engine (vLLM, tiny model) ----------------------------------------------
class RecordingEngine:
    """The session's real engine, passed through; it keeps every request and completion
    so the test can recount what was hidden. Not a double: vLLM generates."""

    def __init__(self, engine: Any):
        self._engine = engine
        self.seen: list[tuple[GenerationRequest, Completion]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = await self._engine.generate(requests)
        self.seen.extend(zip(requests, completions, strict=True))
        return completions


def _greedy(service: Service, max_tokens: int) -> tuple[str, int]:
    """The policy's greedy output for PROBLEM under the think prompt, straight from vLLM."""
    request = GenerationRequest(
        messages=policy_messages(think_user_prompt(PROBLEM, None)),
        role="policy",
        sampling=Sampling(max_tokens=max_tokens),
    )
    [completion] = service.call(service.engine.generate([request]))
    return completion.texts[0], completion.completion_tokens


def _engine_completion_tokens() -> float:
    return REGISTRY.get_sample_value("sciserve_engine_tokens_total", {"kind": "completion"}) or 0.0


def test_a_real_break_hides_all_but_the_stated_answer(service: Service) -> None:
    recording = RecordingEngine(service.engine)
    pipeline = SolvePipeline(recording)
    request = think_request(max_tokens=24)
    try:
        result = service.call(pipeline.solve("hidden-thoughts-1", request))
    finally:
        service.call(pipeline.aclose())
    count = count_with(service.engine.tokenizer())
    outputs = [
        (gen, text, len(ids))
        for gen, completion in recording.seen
        for text, ids in zip(completion.texts, completion.token_ids, strict=True)
    ]
    assert all(asks_thought_format(gen.messages, "generic") for gen, _, _ in outputs)
    splits = [hide_thought(text, MARKERS, read_number) for _, text, _ in outputs]
    assert splits[0].format_break  # random weights: the marker is never written
    final = splits[0] if result.trace[0].detail["format_breaks_after_resample"] else splits[1]
    # The answer text is the answer the output states, or nothing; never the output.
    assert result.answer_text == final.visible
    assert result.answer_text in ("", stated_answer(outputs[0][1], read_number))
    # Every generated token is either hidden or visible, and the hidden ones are recounted.
    hidden = [s.thought_tokens(count, n) for s, (_, _, n) in zip(splits, outputs, strict=True)]
    assert result.usage.thought_tokens == sum(hidden)
    generated = sum(tokens for _, _, tokens in outputs)
    assert result.usage.thought_tokens + result.usage.completion_tokens == generated
    if all(split.format_break for split in splits):  # visible: the stated answers alone
        shown = sum(count(split.visible) for split in splits if split.visible)
        assert result.usage.completion_tokens == shown


def test_solve_and_v1_bill_the_hidden_part_as_thought(service: Service) -> None:
    raw, generated_by_greedy = _greedy(service, 24)
    assert format_broke(raw, RESPONSE_MARKER)
    shown = stated_answer(raw, read_number) or ""
    count = count_with(service.engine.tokenizer())
    body = {
        "problem": PROBLEM,
        "max_tokens": 24,
        "return_trace": True,
        "strategy": {"think": True, "tools": "never"},
    }
    before = _engine_completion_tokens()
    with service.client() as client:
        response = client.post("/solve", json=body)
    assert response.status_code == 200, response.text
    solved = response.json()
    generated = _engine_completion_tokens() - before
    if solved["trace"][0]["detail"]["format_breaks_after_resample"]:
        assert solved["answer_text"] == shown and solved["thoughts"] is None
    usage = solved["usage"]
    assert usage["thought_tokens"] + usage["completion_tokens"] == generated
    split = hide_thought(raw, MARKERS, read_number)
    assert usage["thought_tokens"] >= split.thought_tokens(count, generated_by_greedy)

    sdk = openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)
    ask: Any = {
        "model": "sciserve-think",
        "messages": [{"role": "user", "content": PROBLEM}],
        "max_tokens": 24,
        "extra_body": {"strategy": {"think": True, "tools": "never"}},
    }
    completion = sdk.chat.completions.create(**ask)
    stages = completion.model_extra["sciserve"]["stages"]
    thought = sum(stage["thought_tokens"] for stage in stages)
    details = completion.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens == thought > 0
    assert completion.usage.completion_tokens == thought + sum(
        stage["completion_tokens"] for stage in stages
    )
    # The resample breaks too (random weights write no marker): the greedy output's
    # stated answer is all the content, streamed or not.
    assert completion.choices[0].message.content == shown
    chunks = list(sdk.chat.completions.create(**ask, stream=True))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert "".join(piece or "" for piece in deltas) == shown
