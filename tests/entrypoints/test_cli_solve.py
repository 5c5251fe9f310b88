"""`sciserve solve --strategy/--stream/--json` against the running test service (real
vLLM on the tiny model, real HTTP)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import Service
from tests.entrypoints.test_cli import PROBLEM, _sciserve


def test_strategy_and_json(service: Service) -> None:
    done = _sciserve("solve", PROBLEM, "--url", service.url, "-s", "samples:3", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    with service.client() as client:
        job = client.get(f"/jobs/{result['id']}").json()
    # Three samples, one request each: two when the first two agree (a settled vote).
    assert job["status"] == "succeeded" and result["usage"]["engine_calls"] in (2, 3)


def test_stream_shows_stages_and_the_answer_as_written(service: Service) -> None:
    with service.client() as client:
        expected = client.post(
            "/solve", json={"problem": PROBLEM, "strategy": {"tools": "never"}}
        ).json()
    done = _sciserve("solve", PROBLEM, "--url", service.url, "-s", "direct", "--stream")
    assert done.returncode == 0, done.stderr
    assert "[generate]" in done.stderr and "engine calls" in done.stderr
    # The streamed text first (the visible answer), then the normalized answer.
    assert done.stdout.startswith(expected["answer_text"].strip() + "\n")
    final = expected["answer"] or expected["answer_text"]
    assert done.stdout.rstrip("\n").endswith(final.rstrip("\n"))


def test_a_bad_strategy_is_refused_before_sending() -> None:
    done = _sciserve("solve", PROBLEM, "--url", "http://127.0.0.1:9", "-s", "samples:lots")
    assert done.returncode == 2 and "samples" in done.stderr


def test_open_prints_and_opens_the_jobs_trace_page(service: Service, tmp_path: Path) -> None:
    """`--open`: the page's URL on stderr as soon as the job is queued, handed to the
    browser `webbrowser` finds ($BROWSER here, a recorder), then the answer as usual."""
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.sh"
    recorder.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    recorder.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "solve", PROBLEM, "--url", service.url,
         "-s", "direct", "--open"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "BROWSER": f"{recorder} %s"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [url] = re.findall(r"Trace page: (\S+)", done.stderr)
    job_id = url.rsplit("/", 1)[-1]
    assert url == f"{service.url}/ui/jobs/{job_id}"
    assert opened.read_text().split() == [url]
    with service.client() as client:
        job = client.get(f"/jobs/{job_id}").json()
        assert client.get(f"/ui/jobs/{job_id}").status_code == 200
    assert done.stdout.strip() == (job["result"]["answer"] or job["result"]["answer_text"]).strip()
