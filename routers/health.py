"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
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
    )


@router.get("/metrics")
async def metrics(queue: JobQueue = Depends(get_queue)) -> Response:
    """Prometheus text; queue gauges are read at scrape time (skipped if Redis is away)."""
    with contextlib.suppress(RedisError, OSError):
        stats = await queue.stats()
        QUEUE_DEPTH.set(stats.depth)
        QUEUE_OLDEST_AGE.set(stats.oldest_age_s)
        QUEUE_EXPECTED_SEQUENCES.set(stats.expected_sequences)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
