# mypy: disable-error-code="index, union-attr, misc, arg-type, operator"
"""`sciserve calibrate` against the running test service (real vLLM engine, tiny model;
its auto policy is the built-in one that never trusts, so every question records its
full vote), and the policy it writes served by a pipeline on the same engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from contract.schemas import SolveRequest
from tests.conftest import Service
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.strategies.confidence import AutoPolicy


def test_calibrate_writes_a_policy_that_auto_serves(service: Service, tmp_path: Path) -> None:
    out = tmp_path / "auto.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "entrypoints.cli", "calibrate", "--url", service.url,
            "--limit", "4", "--samples", "3", "--max-tokens", "16", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    policy = json.loads(out.read_text())
    assert policy["measure"] in ("mean", "lowest_group", "tail")
    assert policy["fitted"]["questions"] == 4 and policy["source"]["limit"] == 4
    rows = json.loads(out.with_suffix(".rows.json").read_text())
    assert all(len(row["answers"]) == 3 and row["confidences"]["mean"] < 0 for row in rows)
    assert out.with_suffix(".png").stat().st_size > 0

    # The policy served: a threshold under the greedy answer's confidence returns it
    # alone (one engine call); the fitted file's own threshold is obeyed either way.
    loaded = AutoPolicy.load(out)
    assert (loaded.measure, loaded.threshold) == (policy["measure"], policy["threshold"])
    request = SolveRequest(
        problem="What is 2 + 2?",
        strategy="auto",
        max_tokens=24,
        seed=1,
        answer_type="text",  # any output is an answer: the tiny model's digits vary with load
        return_trace=True,
    )  # type: ignore[arg-type]
    trusting = AutoPolicy(measure="mean", threshold=-1e9)
    result = service.call(
        SolvePipeline(service.engine, PipelineOptions(auto_policy=trusting)).solve("a1", request)
    )
    auto = result.trace[-1].detail["stop"]["auto"]
    assert result.trace[0].detail["answers"][0] is not None  # a greedy answer to trust
    assert not auto["escalated"] and result.usage.engine_calls == 1
    never = SolvePipeline(service.engine).solve("a2", request)  # built-in: always escalates
    escalated = service.call(never)
    assert escalated.trace[-1].detail["stop"]["auto"]["escalated"]
    assert escalated.usage.engine_calls > 1


def test_collect_with_questions_in_flight_keeps_order_and_skips_done(service: Service) -> None:
    """Three questions at once: each row reaches `on_row` once, the rows come back in
    the items' order whatever order they finished in, and a question already recorded
    is not asked again."""
    import httpx

    from entrypoints.calibrate import collect
    from evaluation.datasets import load_items

    items = load_items("gsm_symbolic", limit=4, seed=5)
    seen: list[str] = []

    def on_row(row: dict[str, object]) -> None:
        seen.append(str(row["id"]))

    with httpx.Client(base_url=service.url, timeout=600) as client:
        rows = collect(
            client, items, 2, 8, {"tools": "never"}, on_row,
            done=frozenset({items[1].id}), concurrency=3,
        )  # fmt: skip
    expected = [items[0].id, items[2].id, items[3].id]
    assert [row["id"] for row in rows] == expected
    assert sorted(seen) == sorted(expected)
    assert all(len(row["answers"]) == 2 for row in rows)
