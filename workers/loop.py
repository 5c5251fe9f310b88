"""The worker loop, arq-style: claim, run until the job's deadline, record the result.

Every claimed job ends in exactly one recorded outcome: succeeded, failed with an
outcome code and a reason (contract.errors.Outcome), or handed back to the queue
when the worker stops or its engine dies. A job is never lost inside a worker.

A dead engine (its process killed, OOM, a crash) is not the job's fault: a job whose
engine died under it is handed back to run again, never recorded as failed, and the
loop stops claiming so that its owner (workers/runtime.py) can restart the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from contract.errors import Outcome, SciserveError
from contract.schemas import SolveRequest, TraceEvent
from jobqueue.protocol import CANCELLED_MESSAGE, Job, JobQueue
from workers import job_spans, traces
from workers.job_sink import EngineCall, JobSink
from workers.metrics import JOBS, JOBS_CANCELLED, WORKER_BUSY_SLOTS
from workers.pipeline import SolvePipeline
from workers.stage_events import StageEvents

log = logging.getLogger(__name__)
CLAIM_POLL_S = 1.0  # how often an idle worker looks at its stop flag
CLAIM_RETRY_S = 1.0  # pause after a failed claim (e.g. Redis restarting)
RECORD_RETRY_S = 60.0  # how long an outcome write is retried through a store outage
ENGINE_CHECK_S = 0.5  # how often the loop asks whether its engine has died
DECLINE_PAUSE_S = 1.0  # after handing a job back to a peer: give the peer the next claim


def _never_dead() -> bool:
    return False


def _runs_everything(_request: SolveRequest) -> str | None:
    return None


async def run_worker(
    queue: JobQueue,
    pipeline: SolvePipeline,
    *,
    concurrency: int,
    stop: asyncio.Event | None = None,
    drain_timeout_s: float = 30.0,
    engine_dead: Callable[[], bool] = _never_dead,
    declines: Callable[[SolveRequest], str | None] = _runs_everything,
) -> None:
    """Claim and run jobs until `stop` is set, the engine dies (`engine_dead()`
    turns true), or the task is cancelled.

    At most `concurrency` jobs run at once, so the engine's batch stays full without
    claiming work the worker cannot start. A job cancelled elsewhere (DELETE
    /jobs/{id}, a /solve client gone) is stopped here: its task is cancelled, which
    aborts its engine requests and tool calls. On stop: claim nothing more, let
    running jobs finish for up to `drain_timeout_s`, then hand the rest back. On a
    dead engine: claim nothing more and hand every running job back at once (a job in
    a tool call would only fail at its next engine call), then return. A job that
    `declines` gives a reason for (an adapter it needs failed to load here while a peer
    serves it) goes back to the queue unrun and unbilled, and the loop pauses its claims
    so the peer takes it; a job past its deadline is never declined, it is recorded.
    """
    stop = stop or asyncio.Event()
    halt = asyncio.Event()  # set by `stop` or by the engine's death
    slots = asyncio.Semaphore(concurrency)
    running: dict[str, asyncio.Task[None]] = {}
    cancelled: set[str] = set()
    watcher = asyncio.create_task(_stop_cancelled(queue, running, cancelled))
    guard = asyncio.create_task(_halt_when(stop, engine_dead, halt))

    def finished(job_id: str, _: asyncio.Task[None]) -> None:
        running.pop(job_id, None)
        cancelled.discard(job_id)
        slots.release()
        WORKER_BUSY_SLOTS.set(len(running))

    try:
        while await _acquire_unless_stopped(slots, halt):
            try:
                job = await queue.claim(CLAIM_POLL_S)
            except Exception as exc:  # the queue's store is away: wait, never die
                if _being_cancelled():  # redis-py may turn our cancel into its own error
                    raise asyncio.CancelledError from exc
                log.warning("claim failed (%s); retrying in %.0f s", exc, CLAIM_RETRY_S)
                slots.release()
                await asyncio.sleep(CLAIM_RETRY_S)
                continue
            if job is None:
                slots.release()
                continue
            if engine_dead():  # it died while we waited for this job: not run, handed back
                slots.release()
                await _hand_back(queue, job)
                break
            reason = declines(job.request) if job.remaining_s() > 0 else None
            if reason is not None:
                slots.release()
                await _decline(queue, job, reason)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(halt.wait(), DECLINE_PAUSE_S)
                continue
            task = asyncio.create_task(run_job(queue, pipeline, job, cancelled, engine_dead))
            running[job.id] = task
            WORKER_BUSY_SLOTS.set(len(running))
            task.add_done_callback(functools.partial(finished, job.id))
        if engine_dead():
            log.error("the engine died: handing %d running jobs back to the queue", len(running))
        elif running:
            log.info("draining %d running jobs for up to %.0f s", len(running), drain_timeout_s)
            await asyncio.wait(running.values(), timeout=drain_timeout_s)
    finally:
        watcher.cancel()
        guard.cancel()
        tasks = list(running.values())
        for task in tasks:
            task.cancel()  # run_job hands a job cancelled by shutdown back to the queue
        await asyncio.gather(watcher, guard, *tasks, return_exceptions=True)


async def _halt_when(
    stop: asyncio.Event, engine_dead: Callable[[], bool], halt: asyncio.Event
) -> None:
    """Set `halt` once `stop` is set or the engine has died. The engine is polled: its
    death comes from another process, and an idle worker must notice it too."""
    while not engine_dead():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ENGINE_CHECK_S)
        if stop.is_set():
            break
    halt.set()


async def _stop_cancelled(
    queue: JobQueue, running: dict[str, asyncio.Task[None]], cancelled: set[str]
) -> None:
    """Cancel the task of every job the queue reports as cancelled elsewhere."""
    while True:
        try:
            async for job_id in queue.cancellations():
                task = running.get(job_id)
                if task is not None and not task.done():
                    cancelled.add(job_id)
                    task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the queue's store is away: listen again shortly
            if _being_cancelled():
                raise asyncio.CancelledError from exc
            log.warning("cancellation watch failed (%s); retrying", exc)
            await asyncio.sleep(CLAIM_RETRY_S)


def _being_cancelled() -> bool:
    """Whether this task has been asked to stop, even if a library swallowed the
    CancelledError and raised something else."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


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
    queue: JobQueue,
    pipeline: SolvePipeline,
    job: Job,
    cancelled: Collection[str] = (),
    engine_dead: Callable[[], bool] = _never_dead,
) -> None:
    """Run one job within what remains of its deadline and record its one outcome.

    `cancelled` holds the ids of jobs cancelled elsewhere: their CancelledError is the
    end of the job, not a shutdown that hands it back to the queue. A job that fails
    while `engine_dead()` is true failed because the engine died under it (vLLM's
    `EngineDeadError`, or any error the pipeline turned it into): it is handed back to
    run again instead of being recorded as failed.
    """
    started = time.time()
    budget = job.remaining_s()
    sink = QueueSink(queue, job.id, traces.recorder(), StageEvents(job.request))
    try:
        if budget <= 0:
            raise TimeoutError
        # pipeline.solve, under the job's spans when traces are on (workers/job_spans.py)
        result = await asyncio.wait_for(job_spans.solve(pipeline, job, sink), budget)
    except TimeoutError:
        timeout = job.deadline - job.submitted_at
        await _record_failure(
            queue, job, Outcome.timeout,
            f"The job ran past its deadline of {timeout:g} s from submission "
            "(timeout_s, or the server's default).",
        )  # fmt: skip
        return
    except asyncio.CancelledError:
        if job.id in cancelled:  # DELETE /jobs/{id} or a /solve client gone
            JOBS_CANCELLED.inc()
            await _record_failure(queue, job, Outcome.cancelled, CANCELLED_MESSAGE)
            return
        JOBS.labels(outcome="released").inc()
        await asyncio.shield(queue.release(job.id))
        raise
    except Exception as exc:
        if engine_dead():  # not the job's fault, whatever the error became on the way
            await _hand_back(queue, job)
            return
        if isinstance(exc, SciserveError):
            await _record_failure(queue, job, exc.outcome, exc.message)
            return
        # The client gets the outcome and a sentence; the exception (paths, URLs) is
        # in the worker's log under the job id.
        log.exception("job %s failed", job.id)
        await _record_failure(
            queue, job, Outcome.internal,
            f"The worker failed on this job with an internal error; the operator's logs "
            f"have the details under job {job.id}.",
        )  # fmt: skip
        return
    finished = time.time()
    result.timings.queue_s = started - job.submitted_at
    result.timings.run_s = finished - started
    result.timings.total_s = finished - job.submitted_at
    JOBS.labels(outcome="succeeded").inc()
    await _recorded(queue.complete, job.id, result)
    if sink.recorded is not None:  # opt-in training record (SCISERVE_TRACE_SINK)
        await traces.keep(job, result, sink.recorded, pipeline.engine)


class QueueSink(JobSink):
    """A job's sink in the worker loop: stage events and answer deltas go to the job's
    event stream on the queue (best effort: they never decide the outcome), and, when
    a trace sink is on, engine calls and stage events to the job's record. A stage event
    carries the stage's detail and engine calls, bounded (workers/stage_events.py): the
    job's trace page reads them."""

    streams = True

    def __init__(
        self,
        queue: JobQueue,
        job_id: str,
        recorded: traces.Recorder | None,
        stages: StageEvents,
    ):
        self.queue = queue
        self.job_id = job_id
        self.recorded = recorded
        self.stages = stages

    async def on_stage(self, event: TraceEvent) -> None:
        if self.recorded is not None:
            self.recorded.events.append(event)
        await self._publish(self.stages.event(event))

    async def on_delta(self, text: str) -> None:
        await self._publish({"type": "delta", "text": text})

    def on_engine_call(self, call: EngineCall) -> None:
        self.stages.on_engine_call(call)
        if self.recorded is not None:
            self.recorded.calls.append(call)

    async def _publish(self, event: dict[str, Any]) -> None:
        try:
            await self.queue.publish(self.job_id, event)
        except Exception as exc:  # the result still carries everything an event said
            log.warning("job %s: %s event not published (%s)", self.job_id, event["type"], exc)


async def _hand_back(queue: JobQueue, job: Job) -> None:
    """Requeue a job that met a dead engine, spending an attempt (a job that keeps
    killing engines must end)."""
    log.warning("job %s: the engine died under it; handing it back to the queue", job.id)
    JOBS.labels(outcome="requeued").inc()
    await _requeue(queue, job, count_attempt=True)


async def _decline(queue: JobQueue, job: Job, reason: str) -> None:
    """Requeue a job this worker should not run, without spending an attempt."""
    log.info("job %s: left to another worker: %s", job.id, reason)
    JOBS.labels(outcome="declined").inc()
    await _requeue(queue, job, count_attempt=False)


async def _requeue(queue: JobQueue, job: Job, *, count_attempt: bool) -> None:
    """Shielded, so the loop's teardown cannot interrupt it halfway. Not retried (a
    retried requeue could queue the job twice): if the store is away, the entry stays
    pending and is reclaimed after the visibility timeout, like the job of a worker
    that died."""
    try:
        await asyncio.shield(queue.release(job.id, count_attempt=count_attempt))
    except Exception as exc:
        log.error("job %s: not handed back (%s); it is reclaimed after the visibility "
                  "timeout", job.id, exc)  # fmt: skip


async def _record_failure(queue: JobQueue, job: Job, outcome: Outcome, message: str) -> None:
    """Count and record a failed job with its outcome code."""
    if outcome in (Outcome.internal, Outcome.engine_unavailable, Outcome.tool_unavailable):
        log.warning("job %s failed (%s): %s", job.id, outcome.value, message)
    JOBS.labels(outcome=outcome.value).inc()
    await _recorded(queue.fail, job.id, message, outcome)


async def _recorded(record: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Write an outcome, retrying through a short outage of the queue's store (a
    Redis restart): the work is done, and losing its outcome would mean running the
    job again. If the store stays away, the job stays claimed and is recorded by
    the run that follows."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(RECORD_RETRY_S),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        ):
            with attempt:
                await record(*args)
    except Exception as exc:
        log.error("job %s: outcome not recorded after %.0f s (%s)", args[0], RECORD_RETRY_S, exc)
