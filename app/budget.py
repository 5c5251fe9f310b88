"""What a request may cost, checked at submit so the engine never starts work the
service would refuse: the worst-case tokens a strategy may generate (every generation
it may make x max_tokens) against a ceiling, `max_tokens` against the model's context,
and the caller's per-minute token budget. Every door (`/solve`, `/jobs`, `/v1`) goes
through here, through one `Submitter` (app/solving.py)."""

from __future__ import annotations

from app.auth import Limiter, Principal, RateLimitedError
from app.metrics import BUDGET_REFUSALS
from contract.errors import BudgetExceededError
from contract.schemas import SolveRequest
from contract.settings import Settings


def max_tokens_of(request: SolveRequest, settings: Settings) -> int:
    """The one default of `max_tokens`: the request's, else the server's."""
    return request.max_tokens_or(settings.default_max_tokens)


def worst_case_tokens(request: SolveRequest, settings: Settings) -> int:
    """Tokens the request may generate at most: every generation its strategy may make
    (tool-loop turns, plan steps, SCoRe rounds, ART calls), each up to `max_tokens`, or
    its `budget_tokens` when that is less (the worker holds the job to it)."""
    generations = request.strategy.worst_case_generations(settings.max_tool_calls)
    planned = generations * max_tokens_of(request, settings)
    return planned if request.budget_tokens is None else min(planned, request.budget_tokens)


def check_request(request: SolveRequest, settings: Settings, door: str) -> int:
    """Refuse (422) what no worker should start; returns the worst-case tokens."""
    if request.max_tokens is not None and request.max_tokens >= settings.max_model_len:
        BUDGET_REFUSALS.labels(reason="context", door=door).inc()
        raise BudgetExceededError(
            f"max_tokens={request.max_tokens} leaves no room for the prompt in the model's "
            f"context of {settings.max_model_len} tokens; ask for fewer."
        )
    answer = max_tokens_of(request, settings)
    if request.budget_tokens is not None and request.budget_tokens < answer:
        BUDGET_REFUSALS.labels(reason="budget_tokens", door=door).inc()
        raise BudgetExceededError(
            f"budget_tokens={request.budget_tokens} cannot fit one answer of max_tokens={answer} "
            "(the server's default when the request sets none); raise budget_tokens or set a "
            "lower max_tokens."
        )
    cost = worst_case_tokens(request, settings)
    if cost > settings.max_request_tokens:
        BUDGET_REFUSALS.labels(reason="request_ceiling", door=door).inc()
        generations = request.strategy.worst_case_generations(settings.max_tool_calls)
        raise BudgetExceededError(
            f"This request may generate up to {cost} tokens ({generations} generations "
            f"x {max_tokens_of(request, settings)} max_tokens; tool loops, plan steps, "
            f"SCoRe and ART calls included), above the limit of {settings.max_request_tokens} "
            "(SCISERVE_MAX_REQUEST_TOKENS); use fewer samples, attempts or max_tokens, or "
            "tools='never'."
        )
    return cost


async def charge(limiter: Limiter | None, principal: Principal, tokens: int, door: str) -> None:
    """Charge the caller's per-minute token budget (429 with Retry-After when spent)."""
    if limiter is None:
        return
    try:
        await limiter.charge_tokens(principal, tokens)
    except RateLimitedError:
        BUDGET_REFUSALS.labels(reason="token_budget", door=door).inc()
        raise
