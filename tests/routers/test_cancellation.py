"""Cancellation end to end on the real vLLM engine: `DELETE /jobs/{id}` and a `/solve`
client that disconnects both end the job as `cancelled`, and vLLM aborts its requests
(its own count of unfinished requests drops to zero)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
from prometheus_client import REGISTRY

from tests.conftest import Service

# Long enough that the job is still generating when it is cancelled: 16 samples of
# up to 3000 tokens each on the tiny model.
LONG_JOB = {
    "problem": "Count slowly from one to one thousand, in words.",
    "strategy": {"tools": "never", "samples": 16},
    "max_tokens": 3000,
    "timeout_s": 600,
}


def _unfinished(service: Service) -> int:
    """vLLM's own count of requests it has not finished (running or waiting)."""
    return int(service.engine._llm.output_processor.get_num_unfinished_requests())


def _cancelled_total() -> float:
    return REGISTRY.get_sample_value("sciserve_jobs_cancelled_total") or 0.0


def _wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _wait_generating(service: Service, client: httpx.Client, job_id: str) -> None:
    _wait_until(
        lambda: (
            client.get(f"/jobs/{job_id}").json()["status"] == "running" and _unfinished(service) > 0
        ),
        60,
        "the job to reach the engine",
    )


def test_delete_aborts_the_engine_requests(service: Service) -> None:
    before = _cancelled_total()
    with service.client() as client:
        job_id = client.post("/jobs", json=LONG_JOB).json()["id"]
        _wait_generating(service, client, job_id)
        response = client.delete(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        _wait_until(lambda: _unfinished(service) == 0, 10, "vLLM to abort the job's requests")
        job = client.get(f"/jobs/{job_id}").json()
        events = [
            json.loads(line[5:])
            for line in client.get(f"/jobs/{job_id}/events").text.splitlines()
            if line.startswith("data:")
        ]
    assert job["status"] == "failed" and job["error_code"] == "cancelled"
    assert events[-1] == {"type": "done", "status": "failed"}
    _wait_until(lambda: _cancelled_total() == before + 1, 5, "the cancellation metric")


def test_solve_client_disconnect_cancels_its_job(service: Service) -> None:
    """A raw socket stands for a client that gives up: it sends `/solve` and closes."""
    body = json.dumps(LONG_JOB).encode()
    key = f"disconnect-{time.time_ns()}"  # the same key on POST /jobs names the job
    request = (
        f"POST /solve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    port = int(service.url.rsplit(":", 1)[1])
    with service.client() as client:
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(request)
            job_id = client.post("/jobs", json=LONG_JOB, headers={"Idempotency-Key": key}).json()[
                "id"
            ]
            _wait_generating(service, client, job_id)
        _wait_until(lambda: _unfinished(service) == 0, 10, "vLLM to abort the job's requests")
        job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error_code"] == "cancelled"
