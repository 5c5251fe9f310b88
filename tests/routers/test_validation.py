"""Bad input gets a 422 naming the field, over real HTTP, and the server stays up."""

from __future__ import annotations

import time

import pytest

from contract.schemas import MAX_PROBLEM_CHARS
from tests.conftest import Service


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"problem": ""}, "body.problem"),
        ({"problem": "x" * (MAX_PROBLEM_CHARS + 1)}, "body.problem"),
        ({"problem": "2+2?", "strategy": {"samples": 0}}, "body.strategy.samples"),
        ({"problem": "2+2?", "options": ["only one"]}, "body.options"),
        ({"problem": "2+2?", "temperature": 0.3}, "body.temperature"),
        ({"problem": "2+2?", "strategy": {"attempts": 0}}, "body.strategy.attempts"),
        ({"problem": "2+2?", "answer_type": "poem"}, "body.answer_type"),
        ({"problem": "2+2?", "max_tokens": 0}, "body.max_tokens"),
        ({}, "body.problem"),
    ],
)
@pytest.mark.parametrize("path", ["/solve", "/jobs"])
def test_bad_body_gets_422_naming_the_field(service: Service, path: str, body, field) -> None:
    with service.client() as client:
        response = client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"]
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [
        # Syntax: not JSON at all is a 400 that says so (it was a misleading 422).
        (b"problem=2+2", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe{", "application/json", 400, "could not be decoded"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "could not be decoded"),
        # JSON that is not an object is a 422.
        (b'["2+2?"]', "application/json", 422, "JSON object"),
        # Valid JSON under another media type (or none) is a 415 naming what to send.
        (b'{"problem": "2+2?"}', "text/plain", 415, "Content-Type: application/json"),
        (b'{"problem": "2+2?"}', "", 415, "no Content-Type was sent"),
    ],
)
@pytest.mark.parametrize("path", ["/solve", "/jobs"])
def test_body_that_is_not_json_gets_a_clear_4xx(
    service: Service, path: str, content: bytes, content_type: str, status: int, words: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with service.client() as client:
        request = client.build_request("POST", path, content=content, headers=headers)
        if not content_type:  # httpx adds none for raw content; make sure of it
            request.headers.pop("content-type", None)
        response = client.send(request)
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"problem": "2+2?", "max_tokens": "10"}, "body.max_tokens"),
        ({"problem": "2+2?", "return_trace": "yes"}, "body.return_trace"),
        ({"problem": "2+2?", "reveal_thoughts": 0}, "body.reveal_thoughts"),
        ({"problem": "2+2?", "timeout_s": 5e-324}, "body.timeout_s"),
        ({"problem": "2+2?", "timeout_s": 0.5}, "body.timeout_s"),
        ({"problem": " \n\t "}, "body.problem"),
        ({"problem": "2+2?", "strategy": {"samples": "5"}}, "body.strategy.samples"),
    ],
)
def test_loose_inputs_are_not_coerced(service: Service, body: dict, field: str) -> None:
    with service.client() as client:
        response = client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_idempotency_key_reused_with_another_body_is_422(service: Service) -> None:
    key = {"Idempotency-Key": f"reuse-{time.time_ns()}"}
    with service.client() as client:
        first = client.post("/jobs", json={"problem": "2+2?", "max_tokens": 4}, headers=key)
        again = client.post("/jobs", json={"problem": "2+2?", "max_tokens": 4}, headers=key)
        other = client.post("/jobs", json={"problem": "3+3?", "max_tokens": 4}, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    # The refusal names the caller's key, never a job id.
    assert repr(key["Idempotency-Key"]) in other.json()["detail"]
    assert first.json()["id"] not in other.json()["detail"]


def test_405_lists_every_method_of_the_path(service: Service) -> None:
    with service.client() as client:
        response = client.request("OPTIONS", "/jobs/some-id")
        assert response.status_code == 405
        assert response.headers["allow"].split(", ") == ["DELETE", "GET"]
        response = client.put("/solve", json={"problem": "2+2?"})
        assert response.headers["allow"] == "POST"


def test_openapi_names_the_real_media_types(service: Service) -> None:
    with service.client() as client:
        spec = client.get("/openapi.json").json()
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    events = spec["paths"]["/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert "application/json" not in metrics and any(m.startswith("text/plain") for m in metrics)
    assert list(events) == ["text/event-stream"]
    for path in ("/solve", "/jobs"):
        assert {"400", "415", "422"} <= set(spec["paths"][path]["post"]["responses"])


def test_invalid_requests_are_counted(service: Service) -> None:
    with service.client() as client:
        client.post("/solve", json={"problem": ""})
        metrics = client.get("/metrics").text
    assert 'sciserve_requests_total{outcome="invalid",strategy="unknown"}' in metrics


def test_unknown_job_is_404(service: Service) -> None:
    with service.client() as client:
        response = client.get("/jobs/does-not-exist")
    assert response.status_code == 404
    assert "does-not-exist" in response.json()["detail"]


def test_reveal_thoughts_is_refused_without_the_scope(service: Service) -> None:
    """Embedded default: no keys, and anonymous callers may not see hidden thoughts."""
    with service.client() as client:
        response = client.post("/solve", json={"problem": "2+2?", "reveal_thoughts": True})
    assert response.status_code == 403
    assert "SCISERVE_ANONYMOUS_SCOPES" in response.json()["detail"]
