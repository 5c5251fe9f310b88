"""What the trace pages (`/ui/`) read: one job with its stage events, the caller's recent
jobs, and the rule that keeps thoughts out of both.

A job's stage events are the ones its worker published (workers/stage_events.py: each
stage's detail and engine calls, bounded) and `GET /jobs/{id}/events` streams; a page
reads them here in one piece and follows a running job on that stream. The same owner
rule as `/jobs/{id}` (`OwnedJob`: another key's job is a 404) and the same thoughts
rule as a result's trace (`visible_result`) hold for both.
"""

from __future__ import annotations

from typing import Any

from app.auth import Principal
from app.solving import visible_result
from contract.schemas import JobList, JobListItem, JobStatus, JobTrace
from jobqueue.protocol import JobQueue, JobSummary

LIST_LIMIT = 50  # jobs on the list page
PROBLEM_PREVIEW_CHARS = 200


def reveals(principal: Principal) -> bool:
    """Whether thoughts a job carries may reach this reader (read-time rule, as
    `visible_result`: a key can lose the scope after it submitted)."""
    return "reveal_thoughts" in principal.scopes


def visible_event(event: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A job event as this reader may see it: a stage's `detail.thoughts` only with the
    `reveal_thoughts` scope (engine-call outputs never hold thoughts)."""
    detail = event.get("detail")
    if reveals(principal) or not isinstance(detail, dict) or "thoughts" not in detail:
        return event
    return {**event, "detail": {k: v for k, v in detail.items() if k != "thoughts"}}


async def job_trace(queue: JobQueue, status: JobStatus, principal: Principal) -> JobTrace:
    """One of the caller's jobs with its events so far; `status` is the job as
    `owned_status` gave it to this caller (`OwnedJob`: another key's job is a 404)."""
    job_id = status.id
    summary = await queue.summary(job_id)
    events = [
        visible_event({k: v for k, v in event.items() if k != "job_id"}, principal)
        for event in await queue.history(job_id)
    ]
    return JobTrace(
        id=job_id,
        status=status.status,
        key_name=summary.owner_name,
        submitted_at=summary.submitted_at,
        request=summary.request,
        strategy=summary.request.strategy.name,
        result=status.result,
        error=status.error,
        error_code=status.error_code,
        thoughts_visible=summary.request.reveal_thoughts and reveals(principal),
        events=events,
    )


async def job_list(queue: JobQueue, principal: Principal, limit: int = LIST_LIMIT) -> JobList:
    """The caller's newest jobs: only the ones its own key submitted."""
    recent = await queue.recent(principal.key_hash, limit)
    return JobList(viewer=principal.name, jobs=[_item(s, principal) for s in recent])


def _item(summary: JobSummary, principal: Principal) -> JobListItem:
    status = summary.status
    result = visible_result(status.result, principal) if status.result is not None else None
    return JobListItem(
        id=summary.id,
        status=status.status,
        strategy=summary.request.strategy.name,
        problem=summary.request.problem[:PROBLEM_PREVIEW_CHARS],
        submitted_at=summary.submitted_at,
        key_name=summary.owner_name,
        total_tokens=result.usage.total_tokens if result is not None else None,
        duration_s=result.timings.total_s if result is not None else None,
        answer=result.answer if result is not None else None,
        error_code=status.error_code,
    )
