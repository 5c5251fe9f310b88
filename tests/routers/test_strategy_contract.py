"""The strategy contract over real HTTP: hidden thoughts never leak, bad strategy
combinations get a 422 that says why.

The engine is the `ScriptedEngine` test double (tests/doubles.py): a leak test needs a
thought whose text is known, which a random-weight model cannot be made to write.
The gateway, queue, worker, pipeline, SSE and metrics are the real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entrypoints.embedded import EmbeddedServer, free_port
from tests.conftest import tiny_settings
from tests.doubles import ScriptedEngine
from workers.models.tiny import TinyModel

MARKER = "ZEBRA-SECRET-THOUGHT-7731"
THINKING = (
    f"Here is my thought process: {MARKER} is what I think. Here is my response: \\boxed{{4}}"
)
RULES = [
    ("You check a solution", f"Q: Is it {MARKER}?\nRefine: yes"),  # refines, so every stage runs
    ("You judge solutions", "Solution 2"),
    ("", THINKING),
]
EVERY_STAGE = {"think": True, "attempts": 2, "samples": 2, "art": True}


def _server(tiny_model: TinyModel, tokenizer: Any, **overrides: Any) -> EmbeddedServer:
    settings = tiny_settings(tiny_model, port=free_port(), mount_tools=False, **overrides)
    return EmbeddedServer(settings, ready_timeout_s=60, engine=ScriptedEngine(tokenizer, RULES))


@pytest.fixture(scope="module")
def tokenizer(tiny_model: TinyModel) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model.model_dir))


@pytest.fixture(scope="module")
def scripted(tiny_model: TinyModel, tokenizer: Any) -> Iterator[EmbeddedServer]:
    """Anonymous callers may solve but not reveal thoughts; roles do not fall back."""
    with _server(tiny_model, tokenizer, role_fallback=False) as server:
        yield server


def test_a_hidden_thought_reaches_no_output_channel(
    scripted: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {
        "problem": "What is 2 + 2?",
        "strategy": EVERY_STAGE,
        "return_trace": True,
        "reference": "4",
    }
    with scripted.client() as client:
        solved = client.post("/solve", json=body)
        job_id = client.post("/jobs", json=body).json()["id"]
        with client.stream("GET", f"/jobs/{job_id}/events") as response:
            events = "".join(response.iter_text())
        status = client.get(f"/jobs/{job_id}").text
        metrics = client.get("/metrics").text
    assert solved.status_code == 200, solved.text
    result = solved.json()
    stages = [event["stage"] for event in result["trace"]]
    assert stages == ["generate", "selfcorrect", "art_ask", "art_refine", "art_trust", "select"]
    assert result["answer"] == "4" and result["answer_text"] == "\\boxed{4}"
    assert result["usage"]["thought_tokens"] > 0 and result["thoughts"] is None
    logs = "\n".join(record.getMessage() for record in caplog.records)
    channels = {
        "answer_text": result["answer_text"],
        "response": solved.text,
        "job status": status,
        "events": events,
        "metrics": metrics,
        "logs": logs,
    }
    # The Asker's sub-question quotes the marker on purpose: sub-questions are not
    # thoughts, but they must be the only place it appears.
    for name, text in channels.items():
        visible = text.replace(f"Is it {MARKER}?", "")
        assert MARKER not in visible, f"a thought leaked through {name}"


def test_thoughts_are_revealed_only_when_asked_and_allowed(
    scripted: EmbeddedServer, tiny_model: TinyModel, tokenizer: Any
) -> None:
    body = {"problem": "What is 2 + 2?", "strategy": {"think": True}, "reveal_thoughts": True}
    with scripted.client() as client:
        refused = client.post("/solve", json=body)
    assert refused.status_code == 403 and "reveal_thoughts" in refused.json()["detail"]
    revealing = _server(tiny_model, tokenizer, anonymous_scopes=["solve", "reveal_thoughts"])
    with revealing as server, server.client() as client:
        revealed = client.post("/solve", json={**body, "return_trace": True}).json()
        hidden = client.post("/solve", json={**body, "reveal_thoughts": False}).json()
    assert MARKER in revealed["thoughts"] and MARKER in str(revealed["trace"])
    assert MARKER not in str(hidden)


@pytest.mark.parametrize(
    ("strategy", "tools", "needle"),
    [
        ({"samples": 65}, None, "strategy.samples"),
        ({"attempts": 5}, None, "strategy.attempts"),
        ({"think": True, "tools": "always"}, None, "think (TPO) generates without tools"),
        ({}, ["python", "fortran"], "unknown tool server(s) 'fortran'"),
        ({"few_shot": 17}, None, "strategy.few_shot"),
    ],
)
def test_bad_strategy_combinations_are_422(
    scripted: EmbeddedServer, strategy: dict[str, Any], tools: list[str] | None, needle: str
) -> None:
    body: dict[str, Any] = {"problem": "2+2?", "strategy": strategy}
    if tools is not None:
        body["tools"] = tools
    response = httpx.post(f"{scripted.url}/solve", json=body)
    assert response.status_code == 422 and needle in response.json()["detail"], response.text


def test_art_without_its_roles_is_422_and_counted(scripted: EmbeddedServer) -> None:
    engine = scripted.engine
    spec = engine.adapters()["asker"]
    scripted.call(engine.unload_adapter("asker"))
    try:
        with scripted.client() as client:
            response = client.post("/solve", json={"problem": "2+2?", "strategy": {"art": True}})
            job = client.post("/jobs", json={"problem": "2+2?", "strategy": {"art": True}}).json()
            with client.stream("GET", f"/jobs/{job['id']}/events") as events:
                "".join(events.iter_text())  # returns once the job is done
            status = client.get(f"/jobs/{job['id']}").json()
            metrics = client.get("/metrics").text
    finally:
        scripted.call(engine.load_adapter(spec))
    assert response.status_code == 422, response.text
    assert (
        "asker" in response.json()["detail"]
        and "SCISERVE_ROLE_FALLBACK" in response.json()["detail"]
    )
    assert status["status"] == "failed" and status["error_code"] == "invalid_request"
    assert 'sciserve_requests_total{outcome="invalid",strategy="art"}' in metrics
