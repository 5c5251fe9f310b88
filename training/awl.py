"""AWL (Adapting While Learning, arXiv 2411.00412) datasets from traces.

- WKD, World Knowledge Distillation (§3.1): a problem solved correctly *with* tools
  becomes a supervised solution *without* them: the direct (no-tool) prompt as served,
  and as target the tool run's solving process ending in the direct prompt's answer
  format.
- TUA, Tool Usage Adaptation (§3.2): per problem, the direct accuracy over K sampled
  answers decides easy (≥ threshold) or hard. Easy problems get the adaptive prompt
  with an immediate `answer_question` call holding a correct direct solution; hard
  ones get the tool trajectory of a correct tool run, one example per assistant turn
  (call, then the answer after the tool's result), in AWL's call format
  `{"name": ..., "parameters": {...}}`. The smaller set is repeated to balance them,
  as AWL's `generate_training_data.py` does.

Inputs: direct records (`tools: never`, `samples: K`, `stop: "none"` so that all K
samples run, a reference) and adaptive records
(`tools: auto`, `samples: 1`, a reference) of the same problems.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

from training.examples import (
    Dataset,
    Example,
    Record,
    graded,
    group_by_problem,
    sft,
    stages,
    upsample,
)

ANSWER_FUNCTION = "answer_question"  # AWL's direct-answer function (workers/prompts.py)
DIRECT_THOUGHT = "I can answer the problem directly."  # AWL's easy-question thought
# Records whose generate answers are plain no-tool samples (no refine, no thoughts).
DIRECT_STRATEGIES = ("direct", "vote")


def direct_samples(record: Record) -> list[tuple[str, str | None]]:
    """(output, answer) of each sample of a direct record's generate stage: one engine
    call per sample, in sample order (a vote runs each sample as its own request)."""
    found = stages(record, "generate")
    if not found or not found[0]["calls"]:
        return []
    generate = found[0]
    outputs = [text for call in generate["calls"] for text in call["outputs"]]
    answers = generate["detail"].get("answers") or []
    return list(zip(outputs, answers, strict=False))


def first_prompt(record: Record) -> list[dict[str, str]] | None:
    """The messages of the record's first engine call: its generate prompt as served."""
    generate = stages(record, "generate")
    return generate[0]["calls"][0]["messages"] if generate and generate[0]["calls"] else None


def tool_trajectory(record: Record) -> list[tuple[list[dict[str, str]], str]] | None:
    """The (prompt, output) turns of a correct single-sample run that called a tool."""
    generate = stages(record, "generate")
    if not generate or record.get("correct") is not True:
        return None
    detail = generate[0]["detail"]
    if detail.get("mode") != "adaptive" or detail.get("decisions") != ["tool"]:
        return None
    calls = generate[0]["calls"]
    if not calls or any(call["n"] != 1 or len(call["outputs"]) != 1 for call in calls):
        return None
    return [(call["messages"], call["outputs"][0]) for call in calls]


def answer_call(thought: str, process: str, answer: str) -> str:
    """An `answer_question` call in AWL's format."""
    parameters = {"thought": thought, "sloving_process": process, "answer": answer}
    return json.dumps({"name": ANSWER_FUNCTION, "parameters": parameters}, ensure_ascii=False)


def final_process(output: str) -> tuple[str, str] | None:
    """(solving process, answer) of a trajectory's last output, an answer_question call."""
    try:
        call = json.loads(output.strip().splitlines()[0])
    except (json.JSONDecodeError, IndexError):
        return None
    if not isinstance(call, dict) or call.get("name") != ANSWER_FUNCTION:
        return None
    parameters = call.get("parameters") or {}
    answer = str(parameters.get("answer") or "").strip()
    if not answer:
        return None
    return str(parameters.get("sloving_process") or parameters.get("thought") or ""), answer


def direct_solution(process: str, answer: str, options: list[str] | None) -> str:
    """A tool-free solution in the direct prompt's answer format (AWL's MCQ sentence,
    or `\\boxed{}` as DIRECT_BOXED asks)."""
    ending = f"the answer is {answer}." if options else f"\\boxed{{{answer}}}"
    return f"{process.strip()}\n\nSo {ending}" if process.strip() else f"So {ending}"


def build_wkd(records: Iterable[Record], seed: int = 0) -> Dataset:
    counts = {"problems": 0, "solved_with_tools": 0, "no_direct_prompt": 0, "examples": 0}
    examples: list[Example] = []
    for group in group_by_problem(records).values():
        counts["problems"] += 1
        prompt = next((p for r in group if (p := _direct_prompt_of(r)) is not None), None)
        for record in group:
            trajectory = tool_trajectory(record)
            solved = final_process(trajectory[-1][1]) if trajectory else None
            if solved is None:
                continue
            counts["solved_with_tools"] += 1
            if prompt is None:
                counts["no_direct_prompt"] += 1
                continue
            target = direct_solution(*solved, record["request"].get("options"))
            examples.append(sft(prompt, target, record=record["id"], kind="wkd"))
            break
    random.Random(seed).shuffle(examples)
    counts["examples"] = len(examples)
    return Dataset("awl-wkd", "AWL §3.1 World Knowledge Distillation", examples, counts)


def _direct_prompt_of(record: Record) -> list[dict[str, str]] | None:
    return first_prompt(record) if record["strategy"]["name"] in DIRECT_STRATEGIES else None


def build_tua(
    records: Iterable[Record], seed: int = 0, threshold: float = 0.5, balanced: bool = True
) -> Dataset:
    rng = random.Random(seed)
    counts = {
        "problems": 0, "easy": 0, "hard": 0, "no_direct_samples": 0,
        "easy_without_adaptive_prompt": 0, "hard_without_tool_solution": 0,
        "easy_examples": 0, "hard_examples": 0,
    }  # fmt: skip
    easy: list[Example] = []
    hard: list[Example] = []
    samples_seen: list[int] = []
    for group in group_by_problem(records).values():
        counts["problems"] += 1
        samples = [
            (output, answer, graded(record, answer))
            for record in group
            if record["strategy"]["name"] in DIRECT_STRATEGIES
            for output, answer in direct_samples(record)
        ]
        graded_samples = [s for s in samples if s[2] is not None]
        if not graded_samples:
            counts["no_direct_samples"] += 1
            continue
        samples_seen.append(len(graded_samples))
        accuracy = sum(bool(s[2]) for s in graded_samples) / len(graded_samples)
        adaptive = [r for r in group if r["strategy"]["name"] == "adaptive"]
        if accuracy >= threshold:
            counts["easy"] += 1
            prompt = next((p for r in adaptive if (p := first_prompt(r)) is not None), None)
            if prompt is None:
                counts["easy_without_adaptive_prompt"] += 1
                continue
            output, answer = next((o, a) for o, a, ok in graded_samples if ok)
            target = answer_call(DIRECT_THOUGHT, output, str(answer))
            easy.append(
                sft(prompt, target, record=group[0]["id"], kind="tua", label="easy",
                    direct_accuracy=accuracy)
            )  # fmt: skip
        else:
            counts["hard"] += 1
            trajectory = next((t for r in adaptive if (t := tool_trajectory(r))), None)
            if trajectory is None:
                counts["hard_without_tool_solution"] += 1
                continue
            for turn, (prompt, output) in enumerate(trajectory):
                hard.append(
                    sft(prompt, output, record=group[0]["id"], kind="tua", label="hard",
                        turn=turn, direct_accuracy=accuracy)
                )  # fmt: skip
    counts["easy_examples"], counts["hard_examples"] = len(easy), len(hard)
    examples = upsample(easy, hard, rng) if balanced else [*easy, *hard]
    params: dict[str, Any] = {
        "threshold": threshold,
        "k_min": min(samples_seen, default=0),
        "k_max": max(samples_seen, default=0),
        "balanced": balanced,
    }
    return Dataset("awl-tua", "AWL §3.2 Tool Usage Adaptation", examples, counts, params)


def build_teacher(records: Iterable[Record], seed: int = 0) -> Dataset:
    """WKD with the simulator as the teacher (AWL §3.1 takes its hard-problem solutions
    from a stronger solver that uses the tools): every correct tool trajectory of the
    records, one example per assistant turn (the call, then the answer after the tool's
    result), in the layout the records were written in. Hard examples only; `tua` mixes
    them with easy problems answered directly."""
    counts = {"records": 0, "trajectories": 0, "not_a_correct_tool_run": 0, "examples": 0}
    examples: list[Example] = []
    for record in records:
        counts["records"] += 1
        trajectory = tool_trajectory(record)
        if trajectory is None:
            counts["not_a_correct_tool_run"] += 1
            continue
        counts["trajectories"] += 1
        domain = record["strategy"].get("domain")
        for turn, (prompt, output) in enumerate(trajectory):
            examples.append(
                sft(prompt, output, record=record["id"], kind="wkd-teacher", label="hard",
                    turn=turn, domain=domain)
            )  # fmt: skip
    random.Random(seed).shuffle(examples)
    counts["examples"] = len(examples)
    return Dataset(
        "awl-wkd-teacher", "AWL §3.1 World Knowledge Distillation, the simulator as the teacher",
        examples, counts,
    )  # fmt: skip
