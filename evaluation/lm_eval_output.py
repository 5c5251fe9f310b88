"""lm-evaluation-harness's output files, so its tools (and anyone used to them) read
sciserve's evaluations as they read theirs.

lm-eval writes, per model, `<output_path>/<model_name_sanitized>/results_<date>.json`
(per-task metrics under `results` as `metric,filter` and `metric_stderr,filter`, the
task configs, `n-samples`, the run's `config`, timings) and
`samples_<task>_<date>.jsonl` (one record per document: `doc_id`, `doc`, `target`,
`arguments`, `resps`, `filtered_resps`, `filter`, `metrics`, the three hashes and each
metric's value). sciserve writes one such folder per run (strategy or model name), with
the same keys; its filter is the final-answer extraction (`final-answer`), its metric
`exact_match` under the dataset's grading rule. What lm-eval has no key for (tokens,
seconds, tools, time to first token) is under `sciserve`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from evaluation.datasets import Item

FILTER = "final-answer"
METRIC = "exact_match"
OUTPUT_TYPE = "generate_until"
TASK_VERSION = 1.0


def hash_string(text: str) -> str:
    """lm-eval's document, prompt and target hash: SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sanitize(name: str) -> str:
    """A run or model name as a folder name (lm-eval's sanitize_model_name, plus the
    characters of strategy specs)."""
    return re.sub(r"[\"<>:/|\\?*\[\],\s]+", "__", name).strip("_") or "run"


def mean_stderr(values: list[float]) -> float | str:
    """lm-eval's `mean_stderr`: sample standard deviation / √n; "N/A" below two."""
    n = len(values)
    if n < 2:
        return "N/A"
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def task_name(dataset: str) -> str:
    """`gsm_symbolic`, or a file's stem (`climate.json` → `climate`)."""
    return Path(dataset).stem if dataset.endswith((".json", ".jsonl")) else dataset


def _doc(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "problem": item.problem,
        "options": item.options,
        "answer": item.reference,
        "answer_type": item.answer_type,
        "rel_tol": item.rel_tol,
        "domain": item.domain,
    }


def sample_records(
    items: list[Item], rows: list[dict[str, Any]], gen_kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """One lm-eval sample record per item, in the dataset's order."""
    by_id = {row["id"]: row for row in rows}
    records = []
    for doc_id, item in enumerate(items):
        row = by_id.get(item.id)
        if row is None:
            continue
        doc = _doc(item)
        prompt = row.get("prompt") or item.problem
        score = 1.0 if row["correct"] else 0.0
        records.append(
            {
                "doc_id": doc_id,
                "doc": doc,
                "target": str(item.reference),
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}},
                "resps": [[row.get("response") or ""]],
                "filtered_resps": [row.get("answer")],
                "filter": FILTER,
                "metrics": [METRIC],
                "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False)),
                "prompt_hash": hash_string(prompt),
                "target_hash": hash_string(str(item.reference)),
                METRIC: score,
                "sciserve": {
                    key: row.get(key)
                    for key in (
                        "initial_answer",
                        "initial_correct",
                        "used_tools",
                        "prompt_tokens",
                        "generated_tokens",
                        "engine_calls",
                        "seconds",
                        "ttft_s",
                        "error",
                    )
                },
            }
        )
    return records


def results_document(
    run: dict[str, Any],
    records: list[dict[str, Any]],
    *,
    task: str,
    dataset: str,
    config: dict[str, Any],
    n_original: int,
) -> dict[str, Any]:
    """The `results_<date>.json` of one run."""
    scores = [record[METRIC] for record in records]
    label = run["strategy"]
    wall_s = run.get("wall_s")
    end = time.time()
    metric_key = f"{METRIC},{FILTER}"
    stderr_key = f"{METRIC}_stderr,{FILTER}"
    run_config = run.get("config") or {}
    few_shot = run_config.get("few_shot") or 0
    # lm-eval's `model` is the kind of client and `model_args` its arguments; a /solve
    # run's arguments are its strategy.
    if "base_url" in run_config:
        run_args: dict[str, Any] = {
            "model_args": ",".join(f"{k}={v}" for k, v in run_config.items())
        }
    else:
        run_args = {"strategy": run_config}
    return {
        "results": {
            task: {
                "alias": task,
                metric_key: sum(scores) / len(scores) if scores else None,
                stderr_key: mean_stderr(scores),
            }
        },
        "group_subtasks": {task: []},
        "configs": {
            task: {
                "task": task,
                "dataset_path": dataset,
                "output_type": OUTPUT_TYPE,
                "num_fewshot": few_shot,
                "metric_list": [
                    {"metric": METRIC, "aggregation": "mean", "higher_is_better": True}
                ],
                "filter_list": [{"name": FILTER, "filter": [{"function": "extract_answer"}]}],
                "grading": run["metrics"].get("grading"),
                "generation_kwargs": records[0]["arguments"]["gen_args_0"]["arg_1"]
                if records
                else {},
                "metadata": {"version": TASK_VERSION},
            }
        },
        "versions": {task: TASK_VERSION},
        "n-shot": {task: few_shot},
        "higher_is_better": {task: {METRIC: True}},
        "n-samples": {task: {"original": n_original, "effective": len(records)}},
        "config": {**config, **run_args, "run": label},
        "date": end,
        "task_hashes": {
            task: hash_string(
                "".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in records)
            )
        },
        "model_source": config.get("model"),
        "model_name": label,
        "model_name_sanitized": sanitize(label),
        "start_time": end - wall_s if wall_s is not None else None,
        "end_time": end,
        "total_evaluation_time_seconds": str(wall_s) if wall_s is not None else None,
        "sciserve": run["metrics"],
    }


def write_lm_eval(
    report: dict[str, Any],
    items: list[Item],
    output_path: Path,
    *,
    dataset: str,
    config: dict[str, Any],
) -> list[Path]:
    """Each run of `report` (its `runs` with their `items`) as lm-eval's two files
    under `output_path/<run name>/`; returns the paths written."""
    task = task_name(dataset)
    date_id = datetime.now().isoformat().replace(":", "-")
    written: list[Path] = []
    for run in report["runs"]:
        folder = output_path / sanitize(run["strategy"])
        folder.mkdir(parents=True, exist_ok=True)
        records = sample_records(items, run["items"], run.get("gen_kwargs") or {})
        document = results_document(
            run, records, task=task, dataset=dataset, config=config, n_original=len(items)
        )
        results = folder / f"results_{date_id}.json"
        results.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        samples = folder / f"samples_{task}_{date_id}.jsonl"
        with samples.open("w", encoding="utf-8") as sink:
            for record in records:
                sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        written += [results, samples]
    return written
