"""The OpenAI-compatible API: `POST /v1/chat/completions` and `GET /v1/models`.

Thin routes: translate (app/openai/translate.py), enqueue on the same queue as
/solve, wait or stream (app/openai/stream.py). Errors use OpenAI's body
(app/openai/errors.py).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from app.deps import SettingsDep, SolveCaller, SubmitDep, client_gone
from app.openai.errors import OpenAIRoute
from app.openai.presets import model_names
from app.openai.stream import ChunkStream
from app.openai.translate import to_completion, to_solve_request
from contract.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    OpenAIErrorBody,
)

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody}
    for status in (400, 401, 403, 404, 409, 413, 415, 429, 500, 503, 504)
}
STARTED = int(time.time())


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` references replaced by the definitions, so it
    can stand in a response's media type (OpenAPI has no `$defs` there)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


@router.get("/models", response_model=ModelList, responses=ERRORS)
async def list_models(settings: SettingsDep, _: SolveCaller) -> ModelList:
    """The base model and the strategy presets, each usable as `model`."""
    return ModelList(
        data=[
            ModelCard(
                id=name,
                created=STARTED,
                sciserve={"strategy": strategy.model_dump(), "description": description},
            )
            for name, strategy, description in model_names(settings)
        ]
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **ERRORS,
        200: {
            "description": "A chat completion, or with `stream: true` server-sent events: "
            "`data: <chat.completion.chunk>` lines, then `data: [DONE]`.",
            "content": {
                "application/json": {},
                "text/event-stream": {"schema": _inline(ChatCompletionChunk.model_json_schema())},
            },
        },
    },
)
async def chat_completions(
    request: Request, body: ChatCompletionRequest, submitter: SubmitDep, settings: SettingsDep
) -> Any:
    """Solve the last user message with the model's strategy preset (or `strategy`);
    with `stream: true`, stage progress and the answer as server-sent chunks. A
    client that disconnects cancels its job. The same door as /solve: key, scopes,
    rate limit, token budget and `Idempotency-Key`."""
    solve_request = to_solve_request(body, settings)
    if not body.stream:
        result = await submitter.solve(solve_request, lambda: client_gone(request))
        return to_completion(result, solve_request, body.model)
    job_id = await submitter.submit(solve_request)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    stream = ChunkStream(
        submitter.queue, job_id, solve_request, body.model, settings, include_usage
    )
    return EventSourceResponse(stream.chunks(), ping=15)
