"""Bad input gets a 422 naming the field, over real HTTP, and the server stays up."""

from __future__ import annotations

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


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_body_that_is_not_json_gets_422(service: Service, content_type: str) -> None:
    with service.client() as client:
        response = client.post(
            "/solve", content=b"problem=2+2", headers={"content-type": content_type}
        )
        assert response.status_code == 422
        assert "JSON object" in response.json()["detail"]
        assert client.get("/readyz").status_code == 200


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
