"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from app.deps import Readiness, get_queue, get_readiness
from app.metrics import QUEUE_DEPTH, QUEUE_EXPECTED_SEQUENCES, QUEUE_OLDEST_AGE
from jobqueue.protocol import JobQueue

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (the engine may still be loading)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(readiness: Readiness = Depends(get_readiness)) -> JSONResponse:
    """Ready when the engine is loaded and healthy; 503 with the reason otherwise."""
    ready, reason = await readiness.readiness()
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "detail": reason},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


# A scrape never waits on a slow or frozen Redis: the queue gauges keep their last values.
STATS_TIMEOUT_S = 0.5


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(queue: JobQueue = Depends(get_queue)) -> Response:
    """Prometheus text; queue gauges are read at scrape time (kept if Redis is away)."""
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        stats = await asyncio.wait_for(queue.stats(), STATS_TIMEOUT_S)
        QUEUE_DEPTH.set(stats.depth)
        QUEUE_OLDEST_AGE.set(stats.oldest_age_s)
        QUEUE_EXPECTED_SEQUENCES.set(stats.expected_sequences)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
