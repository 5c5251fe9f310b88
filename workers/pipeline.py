"""The solve pipeline: turn one `SolveRequest` into one `SolveResult` on an engine.

This issue's pipeline runs direct answering (DESIGN §4, generate stage, *direct*).
The other strategy fields are validated by the schema and recorded in the trace; the
refine and select stages plug in here behind the same `solve` call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from app.answers import extract_answer, is_correct, resolve_type
from app.schemas import SolveRequest, SolveResult, TraceEvent, Usage
from workers.engines.base import Engine, GenerationRequest, Sampling
from workers.prompts import direct_user_prompt

POLICY_ROLE = "policy"
Progress = Callable[[TraceEvent], Awaitable[None]]


class SolvePipeline:
    """Runs every stage of one job on the same engine (DESIGN §3)."""

    def __init__(self, engine: Engine, default_max_tokens: int = 1024):
        self.engine = engine
        self.default_max_tokens = default_max_tokens

    async def solve(
        self, job_id: str, request: SolveRequest, progress: Progress | None = None
    ) -> SolveResult:
        """Run the stages; `progress` hears each stage's event as it finishes."""
        answer_type = resolve_type(request.answer_type, request.options, request.reference)
        role = POLICY_ROLE if POLICY_ROLE in self.engine.adapters() else None
        started = time.perf_counter()
        [completion] = await self.engine.generate(
            [
                GenerationRequest(
                    messages=[
                        {
                            "role": "user",
                            "content": direct_user_prompt(request.problem, request.options),
                        }
                    ],
                    role=role,
                    sampling=Sampling(max_tokens=request.max_tokens or self.default_max_tokens),
                )
            ]
        )
        text = completion.texts[0]
        answer = extract_answer(text, answer_type, request.options)
        correct = (
            is_correct(answer, request.reference, answer_type, request.options)
            if request.reference is not None
            else None
        )
        event = TraceEvent(
            stage="generate",
            role=role or "base",
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            duration_s=time.perf_counter() - started,
            detail={
                "mode": "direct",
                "answer_type": answer_type,
                "requested_strategy": request.strategy.model_dump(),
                "finish_reason": completion.finish_reasons[0],
            },
        )
        if progress is not None:
            await progress(event)
        return SolveResult(
            id=job_id,
            answer=answer,
            answer_text=text,
            correct=correct,
            usage=Usage(
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                engine_calls=1,
            ),
            trace=[event] if request.return_trace else None,
        )
