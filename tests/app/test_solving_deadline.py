"""The gateway waits for a job exactly as long as the queue gives it: until the job's
deadline (`jobqueue.protocol.deadline_for`, one rule for both) plus the small grace in
which the worker's own outcome arrives first."""

from __future__ import annotations

import pytest

from app.solving import WAIT_GRACE_S, deadline_passed, wait_limit_s
from contract.schemas import SolveRequest
from contract.settings import Settings
from jobqueue.protocol import deadline_for


@pytest.mark.parametrize("timeout_s", [None, 2.5])
def test_the_wait_ends_at_the_queues_deadline_plus_the_grace(timeout_s: float | None) -> None:
    settings = Settings(model="test-double", default_timeout_s=40.0)
    request = SolveRequest(problem="What is 6 * 7?", timeout_s=timeout_s)
    job_time = deadline_for(request, 1000.0, settings.default_timeout_s) - 1000.0
    assert job_time == (timeout_s or 40.0)
    assert wait_limit_s(request, settings) == pytest.approx(job_time + WAIT_GRACE_S)


def test_the_timeout_names_the_jobs_own_deadline() -> None:
    error = deadline_passed("abc", 2.5 + WAIT_GRACE_S)
    assert error.status_code == 504
    assert str(error) == (
        "Job abc did not finish by its deadline (2.5 s); poll GET /jobs/abc for its outcome."
    )
