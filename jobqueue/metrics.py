"""Prometheus metrics of the Redis queue's delivery, all named `sciserve_*`.

Label values come from closed sets, so no client input can grow the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

JOB_RETRIES = Counter(
    "sciserve_job_retries_total",
    "Jobs reclaimed from a worker that stopped heartbeating, and run again.",
)
WORKER_HEARTBEAT = Gauge(
    "sciserve_worker_heartbeat_timestamp", "Unix time of this worker's last heartbeat."
)
REDIS_PERSISTENT = Gauge(
    "sciserve_redis_persistent",
    "1 when the queue's Redis persists data (AOF or snapshots), 0 when a restart loses "
    "every accepted job and API key.",
)
