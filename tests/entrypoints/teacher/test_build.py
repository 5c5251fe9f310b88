"""`sciserve data build wkd-teacher`: the command writes the data, the records, the
problems and the cards; built examples fit the token budget in the demo model's
tokenizer; `data build tua` mixes the teacher's trajectories with direct answers.

Real tool servers throughout. Test double (named): `ScriptedEngine` writes the base
model's direct samples in the TUA test, because the easy/hard split under test needs
answers right or wrong on cue, which no model here gives.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contract.schemas import JobState, SolveRequest, Strategy
from contract.settings import Settings
from entrypoints.teacher.build import (
    MAX_EXAMPLE_TOKENS,
    TeacherConfig,
    build_wkd_teacher,
    chat_token_counter,
    demo_tokenizer,
)
from jobqueue.memory import InProcessQueue
from tests.doubles import ScriptedEngine
from training.awl import build_tua
from training.records import read_records
from workers import traces
from workers.loop import run_worker
from workers.models.tiny import TinyModel
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.tools.client import ToolClient


def test_the_command_writes_the_data_and_the_card(tmp_path: Path) -> None:
    """The command starts the tool server it needs, as a user runs it."""
    out = tmp_path / "epi.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "data", "build", "wkd-teacher",
         "--domain", "epidemiology", "--count", "3", "--seed", "5", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    card = json.loads(out.with_suffix(".card.json").read_text())
    params = card["params"]
    assert (card["kind"], params["domain"], params["seed"], params["count"]) == (
        "wkd-teacher", "epidemiology", 5, 3,
    )  # fmt: skip
    assert params["generated"] == 3 and params["kept"] >= 1
    assert sum(params["templates"].values()) == params["kept"]
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(examples) == card["examples"] == 2 * params["kept"]
    records = list(read_records([out.with_suffix(".records.jsonl")]))
    assert len(records) == params["kept"]
    problems = out.with_suffix(".problems.jsonl").read_text().splitlines()
    assert len(problems) == 3 and all("answer" in json.loads(p) for p in problems)
    assert "## Templates kept" in out.with_suffix(".card.md").read_text()
    assert f"wrote {len(examples)} examples" in done.stdout


def test_the_command_refuses_a_domain_it_has_no_generator_for(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "data", "build", "wkd-teacher",
         "--domain", "chemistry", "--out", str(tmp_path / "x.jsonl")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Unknown domain 'chemistry'" in done.stderr


@pytest.fixture(scope="module")
def demo_tokens() -> tuple[Any, str]:
    found = demo_tokenizer(Settings())
    if found is None:
        pytest.skip("no prepared demo model (`sciserve model prepare`): its tokenizer is needed")
    return found


@pytest.mark.parametrize(
    ("domain", "count"),
    [("pde", 6), ("mechanics", 6), ("climate", 4), ("epidemiology", 4), ("gsm_symbolic", 4)],
)
def test_built_examples_fit_the_token_budget(
    domain: str,
    count: int,
    demo_tokens: tuple[Any, str],
    tool_servers: dict[str, str],
    tmp_path: Path,
) -> None:
    """Every example written fits 1,536 tokens of the demo model with its chat template;
    the card reports the lengths measured. Climate, epidemiology and gsm_symbolic
    trajectories all fit; in PDE and MuJoCo ones whose tool output is long (AWL's texts: a
    2D field, a MuJoCo log every 0.2 s) the answer turn after it is left out and counted,
    and the call is kept."""
    tokenizer, name = demo_tokens
    out = tmp_path / f"{domain}.jsonl"
    _, run = build_wkd_teacher(
        TeacherConfig(domain, count, 0, out), tool_urls=tool_servers, tokenizer=tokenizer,
        tokenizer_name=name,
    )  # fmt: skip
    count_tokens = chat_token_counter(tokenizer)
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    lengths = [count_tokens([*e["prompt"], *e["completion"]]) for e in examples]
    assert all(n <= MAX_EXAMPLE_TOKENS for n in lengths), max(lengths)
    card = json.loads(out.with_suffix(".card.json").read_text())["params"]
    assert card["tokenizer"] == name and card["token_budget"] == MAX_EXAMPLE_TOKENS
    if lengths:
        assert card["tokens_per_example"]["max"] == max(lengths)
    print(f"{domain}: kept {card['kept']}/{card['generated']}, lengths {card['tokens_per_example']}"
          f", dropped {card['dropped']}")  # fmt: skip
    right = [t for t in run.trajectories if t.correct]
    assert len(right) == len(run.problems)  # the teacher answers every problem right
    if domain in ("climate", "epidemiology", "gsm_symbolic"):
        assert card["kept"] == card["generated"] == count
    else:
        assert set(card["dropped"]) <= {"longer than 1536 tokens", "feedback cut short"}
    calls = [e for e in examples if e["meta"]["turn"] == 0]
    assert len(calls) == card["kept"]  # every kept trajectory teaches its call
    turns = sum(len(t.turns) for t in run.kept())
    assert len(examples) == turns - card["turns_over_budget"]


def _direct_records(
    tiny_model: TinyModel, tool_urls: dict[str, str], problems: list[Any], out: Path
) -> None:
    """The base model's K=4 direct samples of each problem through the real worker
    loop and trace sink; the scripted engine answers the first problem right and the
    second wrong."""
    from transformers import AutoTokenizer

    right, wrong = problems
    other = next(letter for letter in "ABCD" if letter != wrong.reference)
    rules: list[tuple[str, str | list[str]]] = [
        (right.question, f"The tool is not needed. So the answer is {right.reference}."),
        (wrong.question, f"I estimate it. So the answer is {other}."),
    ]

    async def go() -> list[Any]:
        engine = ScriptedEngine(AutoTokenizer.from_pretrained(str(tiny_model.model_dir)), rules)
        pipeline = SolvePipeline(engine, PipelineOptions(), ToolClient(tool_urls, attempts=1))
        queue = InProcessQueue()
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(queue, pipeline, concurrency=1, stop=stop))
        statuses = []
        for problem in problems:
            request = SolveRequest(
                problem=problem.question, options=problem.options, reference=problem.reference,
                answer_type="choice", strategy=Strategy(tools="never", samples=4),
            )  # fmt: skip
            statuses.append(await queue.wait(await queue.submit(request), timeout=60))
        stop.set()
        await asyncio.wait_for(worker, 30)
        await pipeline.aclose()
        return statuses

    traces.configure(traces.TraceSink(out))
    try:
        statuses = asyncio.run(go())
    finally:
        traces.configure(None)
    assert all(s.status == JobState.succeeded for s in statuses), statuses


def test_tua_mixes_teacher_trajectories_with_direct_answers(
    tiny_model: TinyModel, tool_servers: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "pde.jsonl"
    build_wkd_teacher(
        TeacherConfig("pde", 6, 0, out, form="choice", max_tokens=None), tool_urls=tool_servers
    )
    teacher = list(read_records([out.with_suffix(".records.jsonl")]))
    assert len(teacher) >= 2
    from entrypoints.teacher.problems import Problem

    rows = [json.loads(x) for x in out.with_suffix(".problems.jsonl").read_text().splitlines()]
    kept = [r for r in rows if r["teacher_kept"]][:2]
    problems = [
        Problem(
            id=r["id"], domain="pde", template=r["template"], form="choice", split="train",
            seed=0, question=r["problem"], options=r["options"], reference=r["answer"],
            answer_type="choice", tool=r["tool"], arguments=r["arguments"], value=None,
        )
        for r in kept
    ]  # fmt: skip
    direct = tmp_path / "direct"
    _direct_records(tiny_model, tool_servers, problems, direct)
    dataset = build_tua([*teacher, *read_records([direct])], seed=0)
    assert dataset.counts["easy"] == 1 and dataset.counts["hard"] == 1
    easy = [e for e in dataset.examples if e["meta"]["label"] == "easy"]
    hard = [e for e in dataset.examples if e["meta"]["label"] == "hard"]
    by_question = {r["request"]["problem"]: r for r in teacher}
    first_prompt = by_question[problems[0].question]["stages"][0]["calls"][0]["messages"]
    assert easy[0]["prompt"] == first_prompt  # the teacher's served layout, answered directly
    call = json.loads(easy[0]["completion"][0]["content"])
    assert call["name"] == "answer_question"
    assert call["parameters"]["answer"] == problems[0].reference
    turns = by_question[problems[1].question]["stages"][0]["calls"]
    assert sorted(json.dumps(e["prompt"]) for e in hard) == sorted(
        json.dumps(c["messages"]) for c in turns
    )  # the teacher's trajectory for the hard problem, one example per turn
