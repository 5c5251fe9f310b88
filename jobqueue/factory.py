"""Pick the queue from settings: Redis when SCISERVE_REDIS_URL is set, else in-process."""

from __future__ import annotations

from contract.settings import Settings
from jobqueue.memory import InProcessQueue
from jobqueue.protocol import JobQueue
from jobqueue.redis_streams import RedisQueue, connect


def build_queue(settings: Settings, consumer: str | None = None) -> JobQueue:
    if settings.redis_url is None:
        return InProcessQueue(
            settings.queue_max_depth, settings.result_ttl_s, settings.default_timeout_s
        )
    return RedisQueue(
        connect(settings.redis_url),
        prefix=settings.redis_prefix,
        max_depth=settings.queue_max_depth,
        result_ttl_s=settings.result_ttl_s,
        default_timeout_s=settings.default_timeout_s,
        visibility_timeout_s=settings.visibility_timeout_s,
        max_attempts=settings.max_attempts,
        consumer=consumer,
    )
