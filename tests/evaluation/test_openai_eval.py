"""`sciserve eval` against an OpenAI-compatible endpoint (`--url …/v1 --model NAME`) and
its lm-evaluation-harness-style files: sciserve's own /v1 on the tiny model (real vLLM,
real HTTP) stands for the endpoint. The plain-endpoint path (sciserve's prompt sent by
the harness, the answer read from the text) runs end to end against `vllm serve` and
optillm in `python -m bench.peer --model tiny`; here its prompt and grading are checked
on their own. No doubles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evaluation.datasets import Item
from evaluation.lm_eval_output import mean_stderr, sanitize
from evaluation.openai_runner import (
    BOXED_PROMPT,
    CHOICE_PROMPT,
    ChatOptions,
    ChatReply,
    chat_body,
    instructed_prompt,
    is_openai_url,
    score_chat,
)
from tests.conftest import Service
from workers.prompts import AWL_DIRECT_CHOICE, DIRECT_BOXED, direct_user_prompt

SAMPLE_KEYS = {
    "doc_id",
    "doc",
    "target",
    "arguments",
    "resps",
    "filtered_resps",
    "filter",
    "metrics",
    "doc_hash",
    "prompt_hash",
    "target_hash",
    "exact_match",
}


def test_a_plain_endpoint_gets_sciserves_direct_prompt_and_is_graded_by_the_same_rule() -> None:
    assert (BOXED_PROMPT, CHOICE_PROMPT) == (DIRECT_BOXED, AWL_DIRECT_CHOICE)
    choice = Item("c", "Which?", "B", ["x", "y"], "choice")
    number = Item("n", "How many?", "310", None, "number", 0.0)
    for item in (choice, number):
        assert instructed_prompt(item) == direct_user_prompt(item.problem, item.options)
    plain = chat_body(number, ChatOptions("m", max_tokens=9), sciserve=False)
    assert plain["temperature"] == 0.0 and plain["max_tokens"] == 9  # greedy by default
    assert plain["messages"][0]["content"].startswith(DIRECT_BOXED)
    assert "answer_type" not in plain  # a plain server may refuse unknown fields
    own = chat_body(number, ChatOptions("sciserve-vote5", stream=True), sciserve=True)
    assert own["messages"][0]["content"] == "How many?" and "temperature" not in own
    assert own["answer_type"] == "number" and own["stream_options"] == {"include_usage": True}
    reply = ChatReply(text="... so \\boxed{300}", usage={"completion_tokens": 7})
    row = score_chat(number, reply, 1.0, "prompt")
    assert (row.answer, row.correct, row.generated_tokens) == ("300", False, 7)  # exact
    assert score_chat(number, ChatReply(text="The answer is 310."), 1.0, "p").correct
    assert is_openai_url("http://h:1/v1") and is_openai_url("http://h:1/v1/")
    assert not is_openai_url("http://h:1") and not is_openai_url("http://h:1/v1x")
    assert mean_stderr([1.0]) == "N/A" and mean_stderr([0.0, 1.0]) == pytest.approx(0.5)
    assert sanitize("samples:5,attempts:2") == "samples__5__attempts__2"


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "entrypoints.cli", "eval", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _lm_eval_files(folder: Path, task: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    [results] = folder.glob("results_*.json")
    [samples] = folder.glob(f"samples_{task}_*.jsonl")
    assert results.stem.removeprefix("results_") == samples.stem.removeprefix(f"samples_{task}_")
    lines = samples.read_text().splitlines()
    return json.loads(results.read_text()), [json.loads(line) for line in lines]


def test_eval_cli_against_an_openai_endpoint_writes_lm_eval_files(
    service: Service, tmp_path: Path
) -> None:
    dataset = tmp_path / "adds.jsonl"
    rows = [{"problem": f"What is {a} + {a}?", "answer": str(2 * a)} for a in range(1, 4)]
    dataset.write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "report.json"
    url = f"{service.url}/v1"
    models = ["--model", "sciserve-direct", "--model", "sciserve-vote5"]
    done = _eval(str(dataset), "--url", url, *models, "--stream", "--max-tokens", "8",
                 "--out", str(out), "--output-path", str(tmp_path / "lm"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    runs = {run["strategy"]: run for run in report["runs"]}
    assert list(runs) == ["sciserve-direct", "sciserve-vote5"] and report["n"] == 3
    assert report["strategy"] == "sciserve-direct" and len(report["items"]) == 3
    assert all("items" not in run for run in report["runs"])  # rows once, at the top
    for name, run in runs.items():
        metrics = run["metrics"]
        assert metrics["errors"] == 0, report["items"]
        assert metrics["tokens_per_question"] > 0 and metrics["ttft_seconds_per_question"] > 0
        assert run["config"] == {"model": name, "base_url": url}
        results, samples = _lm_eval_files(tmp_path / "lm" / name, "adds")
        task = results["results"]["adds"]
        assert task["alias"] == "adds"
        assert task["exact_match,final-answer"] == metrics["accuracy"]
        assert "exact_match_stderr,final-answer" in task
        assert results["n-samples"] == {"adds": {"original": 3, "effective": 3}}
        assert results["config"]["model"] == "openai-chat-completions"
        assert results["config"]["url"] == url and results["config"]["run"] == name
        assert results["config"]["model_args"] == f"model={name},base_url={url}"
        assert results["configs"]["adds"]["output_type"] == "generate_until"
        assert results["versions"] == {"adds": 1.0} and results["n-shot"] == {"adds": 0}
        assert results["higher_is_better"] == {"adds": {"exact_match": True}}
        assert results["model_name"] == name and set(results["task_hashes"]) == {"adds"}
        assert float(results["total_evaluation_time_seconds"]) > 0
        assert [s["doc_id"] for s in samples] == [0, 1, 2]
        for sample, row in zip(samples, rows, strict=True):
            assert set(sample) >= SAMPLE_KEYS
            assert sample["target"] == row["answer"] and sample["doc"]["problem"] == row["problem"]
            assert sample["arguments"]["gen_args_0"]["arg_0"] == row["problem"]  # sciserve prompts
            assert sample["arguments"]["gen_args_0"]["arg_1"]["max_tokens"] == 8
            assert sample["filter"] == "final-answer" and sample["metrics"] == ["exact_match"]
            assert isinstance(sample["resps"][0][0], str) and len(sample["filtered_resps"]) == 1
            assert sample["exact_match"] in (0.0, 1.0)
            assert sample["sciserve"]["generated_tokens"] > 0
            assert sample["sciserve"]["ttft_s"] > 0
        assert sum(s["exact_match"] for s in samples) / 3 == pytest.approx(metrics["accuracy"])
    assert "sciserve-vote5" in done.stdout


def test_eval_cli_refuses_mixed_up_endpoint_options(tmp_path: Path) -> None:
    dataset = tmp_path / "one.jsonl"
    dataset.write_text('{"problem": "1+1?", "answer": "2"}\n')
    no_model = _eval(str(dataset), "--url", "http://127.0.0.1:9/v1")
    assert no_model.returncode == 2 and "--model" in no_model.stderr
    with_strategy = _eval(str(dataset), "--url", "http://127.0.0.1:9/v1", "-m", "x", "-s", "art")
    assert with_strategy.returncode == 2 and "model name picks the strategy" in with_strategy.stderr
    model_for_solve = _eval(str(dataset), "--url", "http://127.0.0.1:9", "-m", "x")
    assert model_for_solve.returncode == 2 and "OpenAI-compatible" in model_for_solve.stderr
