"""The worker loop, arq-style: claim, run with a timeout, record the result.

Every claimed job ends in exactly one recorded outcome: succeeded, failed with a
reason (a crash or a timeout), or handed back to the queue when the worker stops.
A job is never lost inside a worker.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.errors import SciserveError
from app.metrics import JOBS, WORKER_BUSY_SLOTS
from app.queue import Job, JobQueue
from app.schemas import TraceEvent
from workers.pipeline import SolvePipeline

log = logging.getLogger(__name__)
CLAIM_POLL_S = 1.0  # how often an idle worker looks at its stop flag
CLAIM_RETRY_S = 1.0  # pause after a failed claim (e.g. Redis restarting)


async def run_worker(
    queue: JobQueue,
    pipeline: SolvePipeline,
    *,
    concurrency: int,
    default_timeout_s: float,
    stop: asyncio.Event | None = None,
    drain_timeout_s: float = 30.0,
) -> None:
    """Claim and run jobs until `stop` is set (or the task is cancelled).

    At most `concurrency` jobs run at once, so the engine's batch stays full without
    claiming work the worker cannot start. On stop: claim nothing more, let running
    jobs finish for up to `drain_timeout_s`, then hand the rest back to the queue.
    """
    stop = stop or asyncio.Event()
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    try:
        while await _acquire_unless_stopped(slots, stop):
            try:
                job = await queue.claim(CLAIM_POLL_S)
            except Exception as exc:  # the queue's store is away: wait, never die
                log.warning("claim failed (%s); retrying in %.0f s", exc, CLAIM_RETRY_S)
                slots.release()
                await asyncio.sleep(CLAIM_RETRY_S)
                continue
            if job is None:
                slots.release()
                continue
            task = asyncio.create_task(run_job(queue, pipeline, job, default_timeout_s))
            running.add(task)
            WORKER_BUSY_SLOTS.set(len(running))
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())
            task.add_done_callback(lambda _: WORKER_BUSY_SLOTS.set(len(running)))
        if running:
            log.info("draining %d running jobs for up to %.0f s", len(running), drain_timeout_s)
            await asyncio.wait(running, timeout=drain_timeout_s)
    finally:
        for task in running:
            task.cancel()  # run_job hands a cancelled job back to the queue
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _acquire_unless_stopped(slots: asyncio.Semaphore, stop: asyncio.Event) -> bool:
    """Take a free slot, or give up as soon as `stop` is set: a worker whose slots are
    all busy must still notice a shutdown without waiting for a job to end."""
    if stop.is_set():
        return False
    acquire = asyncio.ensure_future(slots.acquire())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not acquire.done():
        acquire.cancel()
        return False
    if stop.is_set():
        slots.release()
        return False
    return True


async def run_job(
    queue: JobQueue, pipeline: SolvePipeline, job: Job, default_timeout_s: float
) -> None:
    """Run one job and record its outcome."""
    timeout = job.request.timeout_s or default_timeout_s
    started = time.time()

    async def progress(event: TraceEvent) -> None:
        await queue.publish(job.id, {"type": "stage", **event.model_dump(exclude={"detail"})})

    try:
        result = await asyncio.wait_for(pipeline.solve(job.id, job.request, progress), timeout)
    except TimeoutError:
        JOBS.labels(outcome="timeout").inc()
        await queue.fail(job.id, f"The job ran past its timeout of {timeout:g} s.", "timeout")
        return
    except asyncio.CancelledError:
        JOBS.labels(outcome="released").inc()
        await asyncio.shield(queue.release(job.id))
        raise
    except SciserveError as exc:
        if exc.status_code >= 500:
            message = f"The worker failed on this job: {exc.message}"
            log.warning("job %s failed: %s", job.id, exc.message)
            JOBS.labels(outcome="failed").inc()
            await queue.fail(job.id, message)
        else:  # the request asked for something this worker cannot do: the client's 4xx
            JOBS.labels(outcome="invalid").inc()
            await queue.fail(job.id, exc.message, "invalid_request")
        return
    except Exception as exc:
        log.exception("job %s failed", job.id)
        JOBS.labels(outcome="failed").inc()
        await queue.fail(job.id, f"The worker failed on this job: {type(exc).__name__}: {exc}")
        return
    finished = time.time()
    result.timings.queue_s = started - job.submitted_at
    result.timings.run_s = finished - started
    result.timings.total_s = finished - job.submitted_at
    JOBS.labels(outcome="succeeded").inc()
    await queue.complete(job.id, result)
