"""Typed errors and the closed set of job outcomes, with their HTTP statuses.

Each message is a sentence a user can act on; the status code tells a client whether
retrying can help (503/504) or the request must change (4xx). A worker records a
failed job's `Outcome` (not its exception) in the queue; the gateway turns it back
into the same error with `error_for_outcome`, so a 503 from a tool server reaches the
client as a 503, not a 500. `app/errors.py` only renders these as responses.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Outcome(StrEnum):
    """Why a job failed; the closed set that crosses the queue."""

    invalid_request = "invalid_request"  # the request asks for what this service cannot do
    prompt_too_long = "prompt_too_long"  # the model's context cannot hold the prompt
    tool_unavailable = "tool_unavailable"  # a needed tool server is down; retry later
    engine_unavailable = "engine_unavailable"  # the engine is down or failed; retry later
    timeout = "timeout"  # the job's deadline passed
    cancelled = "cancelled"  # DELETE /jobs/{id}, or the /solve client went away
    internal = "internal"  # a bug or an unexpected failure; the message says what


def outcome_of(value: str | None) -> Outcome | None:
    """Read a recorded code; codes of older releases (`worker_error`, `shutdown`) are
    `internal`, so a job stored before an upgrade still reads."""
    if value is None or value == "":
        return None
    try:
        return Outcome(value)
    except ValueError:
        return Outcome.internal


class SciserveError(Exception):
    """Base of every error a client may see."""

    status_code = 500
    headers: ClassVar[dict[str, str] | None] = None
    outcome: ClassVar[Outcome] = Outcome.internal

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AdapterError(SciserveError):
    """An adapter or registry is unusable (wrong base, rank, missing files, no slot)."""

    status_code = 422
    outcome: ClassVar[Outcome] = Outcome.invalid_request


class AuthError(SciserveError):
    status_code = 401


class ForbiddenError(SciserveError):
    status_code = 403


class ConflictError(SciserveError):
    """The request is valid but this process cannot serve it (e.g. no engine here)."""

    status_code = 409


class UnknownJobError(SciserveError):
    status_code = 404


class EngineUnavailableError(SciserveError):
    """A remote engine cannot be reached; retrying later can help."""

    status_code = 503
    outcome: ClassVar[Outcome] = Outcome.engine_unavailable
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class ToolUnavailableError(SciserveError):
    """A tool server cannot be reached after retries; the job can be retried later."""

    status_code = 503
    outcome: ClassVar[Outcome] = Outcome.tool_unavailable
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class QueueFullError(SciserveError):
    """Backpressure: the queue is at its bound, never grown without limit."""

    status_code = 503
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "2"}


class IdempotencyConflictError(SciserveError):
    """An Idempotency-Key reused with a different body (IETF Idempotency-Key draft)."""

    status_code = 422


class BudgetExceededError(SciserveError):
    """A request whose possible cost is above what the service accepts."""

    status_code = 422


class JobTimeoutError(SciserveError):
    """The job outran its time; it is marked failed, not dropped."""

    status_code = 504
    outcome: ClassVar[Outcome] = Outcome.timeout


class InvalidStrategyError(SciserveError):
    """A strategy the worker cannot run as asked (e.g. ART without its roles)."""

    status_code = 422
    outcome: ClassVar[Outcome] = Outcome.invalid_request


class PromptTooLongError(SciserveError):
    """A prompt the model's context cannot hold."""

    status_code = 422
    outcome: ClassVar[Outcome] = Outcome.prompt_too_long


class JobCancelledError(SciserveError):
    """The job was cancelled before it finished; its result will never come."""

    status_code = 409
    outcome: ClassVar[Outcome] = Outcome.cancelled


class JobFailedError(SciserveError):
    """An internal failure of the worker on this job (a bug, not the request)."""

    status_code = 500


# One error class per outcome: what `/solve` raises for a failed job.
_OUTCOME_ERRORS: dict[Outcome, type[SciserveError]] = {
    Outcome.invalid_request: InvalidStrategyError,
    Outcome.prompt_too_long: PromptTooLongError,
    Outcome.tool_unavailable: ToolUnavailableError,
    Outcome.engine_unavailable: EngineUnavailableError,
    Outcome.timeout: JobTimeoutError,
    Outcome.cancelled: JobCancelledError,
    Outcome.internal: JobFailedError,
}


def error_for_outcome(outcome: Outcome, message: str) -> SciserveError:
    """The error (status, headers, message) a client gets for a job that failed so."""
    return _OUTCOME_ERRORS[outcome](message)
