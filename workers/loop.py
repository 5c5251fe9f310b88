"""The worker loop, arq-style: claim, run with a timeout, record the result.

Every claimed job ends in exactly one recorded outcome (succeeded or failed with a
reason): a crash or timeout inside the pipeline becomes a failed job, never a lost one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.queue import Job, JobQueue
from workers.pipeline import SolvePipeline

log = logging.getLogger(__name__)


async def run_worker(
    queue: JobQueue, pipeline: SolvePipeline, *, concurrency: int, default_timeout_s: float
) -> None:
    """Claim and run jobs until cancelled, at most `concurrency` at once so the
    engine's batch stays full without claiming work it cannot start."""
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    try:
        while True:
            await slots.acquire()
            job = await queue.claim()
            task = asyncio.create_task(run_job(queue, pipeline, job, default_timeout_s))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())
    finally:
        for task in running:
            task.cancel()


async def run_job(
    queue: JobQueue, pipeline: SolvePipeline, job: Job, default_timeout_s: float
) -> None:
    """Run one job and record its outcome."""
    timeout = job.request.timeout_s or default_timeout_s
    await queue.mark_running(job.id)
    started = time.time()
    try:
        result = await asyncio.wait_for(pipeline.solve(job.id, job.request), timeout)
    except TimeoutError:
        await queue.fail(job.id, f"The job ran past its timeout of {timeout:g} s.", "timeout")
        return
    except asyncio.CancelledError:
        await queue.fail(job.id, "The worker shut down before the job finished.", "shutdown")
        raise
    except Exception as exc:
        log.exception("job %s failed", job.id)
        await queue.fail(job.id, f"The worker failed on this job: {type(exc).__name__}: {exc}")
        return
    finished = time.time()
    result.timings.queue_s = started - job.submitted_at
    result.timings.run_s = finished - started
    result.timings.total_s = finished - job.submitted_at
    await queue.complete(job.id, result)
