"""What a request may cost, checked at submit so the engine never starts work the
service would refuse: the worst-case tokens a strategy may generate (engine sequences
x max_tokens) against a ceiling, `max_tokens` against the model's context, and the
caller's per-minute token budget."""

from __future__ import annotations

from app.auth import Limiter, Principal, RateLimitedError
from app.metrics import BUDGET_REFUSALS
from contract.errors import BudgetExceededError
from contract.schemas import SolveRequest
from contract.settings import Settings


def worst_case_tokens(request: SolveRequest, settings: Settings) -> int:
    """Tokens the request may generate at most: every engine sequence its strategy
    implies, each up to `max_tokens`."""
    per_sequence = request.max_tokens or settings.default_max_tokens
    return request.strategy.expected_engine_sequences() * per_sequence


def check_request(request: SolveRequest, settings: Settings) -> int:
    """Refuse (422) what no worker should start; returns the worst-case tokens."""
    if request.max_tokens is not None and request.max_tokens >= settings.max_model_len:
        BUDGET_REFUSALS.labels(reason="context").inc()
        raise BudgetExceededError(
            f"max_tokens={request.max_tokens} leaves no room for the prompt in the model's "
            f"context of {settings.max_model_len} tokens; ask for fewer."
        )
    cost = worst_case_tokens(request, settings)
    if cost > settings.max_request_tokens:
        BUDGET_REFUSALS.labels(reason="request_ceiling").inc()
        raise BudgetExceededError(
            f"This request may generate up to {cost} tokens "
            f"({request.strategy.expected_engine_sequences()} engine sequences x "
            f"{request.max_tokens or settings.default_max_tokens} max_tokens), above the "
            f"limit of {settings.max_request_tokens} (SCISERVE_MAX_REQUEST_TOKENS); use fewer "
            "samples, attempts or max_tokens."
        )
    return cost


async def charge(limiter: Limiter | None, principal: Principal, tokens: int) -> None:
    """Charge the caller's per-minute token budget (429 with Retry-After when spent)."""
    if limiter is None:
        return
    try:
        await limiter.charge_tokens(principal, tokens)
    except RateLimitedError:
        BUDGET_REFUSALS.labels(reason="token_budget").inc()
        raise
