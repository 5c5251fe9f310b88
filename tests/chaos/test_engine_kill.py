"""Chaos against a real worker process: its vLLM engine process is SIGKILLed mid-jobs.

A `sciserve worker` process serves the tiny model (with its three LoRA adapters) on the
real vLLM CPU engine, over the real Redis (test database, a fresh prefix); jobs go in
through the real queue (`RedisQueue.submit`, what the gateway calls). While jobs run,
the test SIGKILLs the worker's `VLLM::EngineCore` child. Then:

- every accepted job ends `succeeded`, with exactly one outcome written, and the jobs
  the engine died under ran again (handed back, not failed);
- the worker said so: /readyz answered 503 with the reason while the engine was down,
  then 200 again after the in-place restart, and its metrics count one restart;
- no engine process is left behind, neither the killed one's nor the new one's once
  the worker stops (SIGTERM, exit 0).

No test doubles there: real processes, real Redis, real HTTP, the real engine.

`test_engine_deaths_are_bounded_then_the_worker_gives_up` checks the restart policy of
`WorkerRuntime` in process, fast, on one named test double: `MortalHfEngine`, the real
transformers engine on the tiny model with a `kill()` that stands in for its engine
process dying (four real vLLM restarts would take minutes on CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import httpx
import psutil
import pytest
import redis
from prometheus_client import REGISTRY

from adapters.registry import ROLES
from contract.schemas import JobState, SolveRequest
from jobqueue.memory import InProcessQueue
from jobqueue.redis_streams import RedisQueue, connect
from tests.conftest import REDIS_URL, Spawn, _import_vllm, tiny_settings
from workers.engines.base import Completion, GenerationRequest
from workers.engines.hf_engine import HfEngine
from workers.metrics import ADAPTER_LOADED
from workers.models.tiny import TinyModel
from workers.runtime import MAX_ENGINE_RESTARTS, WorkerRuntime

JOBS = 6
# Long enough on the tiny model that the kill lands while jobs generate; one engine
# call per job (no tools), and a deadline with room for an engine restart.
REQUEST = {
    "problem": "Count to ten.",
    "strategy": {"tools": "never"},
    "max_tokens": 1024,
    "timeout_s": 280,
}
ENGINE_PROCESS_NAMES = ("VLLM::EngineCore", "VLLM::Worker")


def _engine_processes(worker: psutil.Process) -> dict[int, str]:
    """The worker's vLLM descendants (the engine core and its model worker): pid → name."""
    found = {}
    for child in worker.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name() in ENGINE_PROCESS_NAMES:
                found[child.pid] = child.name()
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _submit(prefix: str, count: int) -> list[str]:
    async def submit() -> list[str]:
        queue = RedisQueue(connect(REDIS_URL), prefix=prefix)
        try:
            request = SolveRequest.model_validate(REQUEST)
            return [await queue.submit(request) for _ in range(count)]
        finally:
            await queue.close()
            await queue.redis.aclose()

    return asyncio.run(submit())


class ReadinessLog:
    """Polls a worker's /readyz in a thread, keeping every (status code, detail)."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                self.answers.append((response.status_code, response.json()["detail"]))
            except httpx.TransportError as exc:
                self.answers.append((0, str(exc)))
            self._stop.wait(0.2)

    def __enter__(self) -> ReadinessLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the worker exited during start-up; see its log"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"the worker was not ready within {timeout:g} s")


@pytest.fixture()
def engine_pids() -> Iterator[set[int]]:
    """Pids of every vLLM process the test saw; any still alive at the end is killed
    (a failed test must not leave engines eating the CPU), after the assertions."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        if _alive(pid):
            psutil.Process(pid).kill()


@pytest.mark.timeout(600)
def test_killed_engine_process_jobs_rerun_once_and_worker_recovers(
    spawn: Spawn, redis_prefix: str, engine_pids: set[int]
) -> None:
    _import_vllm()
    process, url = spawn(
        "worker",
        wait=False,
        engine="vllm",
        kv_cache_bytes=64 * 1024 * 1024,
        max_loras=4,  # 3 roles + 1 free slot: vLLM CPU LoRA slot -1 bug
        worker_concurrency=3,
        visibility_timeout_s=5,
    )
    worker = psutil.Process(process.pid)
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        try:
            _wait_ready(url, process, timeout=300)
        finally:  # even on a failed start: the fixture SIGKILLs the worker, not its engine
            engine_pids.update(_engine_processes(worker))
        first = _engine_processes(worker)
        engine_pids.update(first)
        [core] = [pid for pid, name in first.items() if name == "VLLM::EngineCore"]
        with ReadinessLog(url) as readiness:
            ids = _submit(redis_prefix, JOBS)
            deadline = time.monotonic() + 60
            while store.hget(f"{redis_prefix}:job:{ids[0]}", "status") != "running":
                assert time.monotonic() < deadline, "the worker never started a job"
                time.sleep(0.05)
            time.sleep(0.5)  # its engine request is in flight
            killed_at = len(readiness.answers)
            psutil.Process(core).send_signal(signal.SIGKILL)

            finished: dict[str, str] = {}
            deadline = time.monotonic() + 300
            while len(finished) < JOBS:
                assert time.monotonic() < deadline, f"unfinished: {set(ids) - set(finished)}"
                for job_id in set(ids) - set(finished):
                    status = store.hget(f"{redis_prefix}:job:{job_id}", "status")
                    if status in ("succeeded", "failed"):
                        finished[job_id] = status
                time.sleep(0.2)
            time.sleep(0.5)  # one more /readyz answer after the last job
        assert process.poll() is None, "the worker restarted its engine in place"
        second = _engine_processes(worker)
        engine_pids.update(second)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        # Stop the worker as its supervisor would: it closes its engine on the way out.
        process.send_signal(signal.SIGTERM)
        exit_code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            exit_code = process.wait(60)

    # Every accepted job succeeded, each outcome written once; some ran twice.
    assert finished == dict.fromkeys(ids, "succeeded"), finished
    events = [store.lrange(f"{redis_prefix}:job:{i}:events", 0, -1) for i in ids]
    assert [sum('"type": "done"' in e for e in job) for job in events] == [1] * JOBS
    runs = [sum('"status": "running"' in e for e in job) for job in events]
    assert max(runs) >= 2, f"no job ran again after the kill: {runs}"
    assert store.xpending(f"{redis_prefix}:jobs", "workers")["pending"] == 0

    # The worker reported not-ready with the reason while its engine was down.
    after_kill = readiness.answers[killed_at:]
    down = [detail for code, detail in after_kill if code == 503]
    assert any("engine process died" in detail for detail in down), after_kill
    assert after_kill[-1][0] == 200, after_kill[-5:]
    assert _metric(metrics, "sciserve_engine_restarts_total") == 1
    assert _metric(metrics, "sciserve_engine_dead") == 0
    assert _metric(metrics, 'sciserve_jobs_total{outcome="requeued"}') >= 1
    assert _metric(metrics, 'sciserve_jobs_total{outcome="succeeded"}') == JOBS
    assert _metric(metrics, "sciserve_worker_adapters_loaded") == 3  # reloaded on restart

    # A new engine core replaced the killed one, and none outlives the worker.
    assert core not in second
    assert "VLLM::EngineCore" in second.values()
    assert exit_code == 0
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in engine_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in engine_pids if _alive(pid)], "orphan engine processes"


class MortalHfEngine(HfEngine):
    """Test double: the real transformers engine plus VllmEngine's dead-engine surface
    (`is_dead`, `restart`). `kill()` stands in for the engine process dying: requests
    held in generate (`hold`) then fail, as vLLM's fail with EngineDeadError, and every
    request fails until `restart`, which waits for the test's `allow_restart`."""

    def __init__(self, model: str):
        super().__init__(model)
        self.dead = False
        self.hold = False
        self.died = asyncio.Event()
        self.allow_restart = asyncio.Event()
        self.restarts = 0

    def kill(self) -> None:
        self.dead = True
        self.died.set()

    def is_dead(self) -> bool:
        return self.dead

    async def restart(self) -> None:
        await self.allow_restart.wait()
        self.allow_restart.clear()
        self.dead, self.died = False, asyncio.Event()
        self.restarts += 1

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if self.hold:
            await self.died.wait()
        if self.dead:
            raise RuntimeError("the engine core process died")
        return await super().generate(requests)


async def _until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture()
def adapter_gauges_restored() -> Iterator[None]:
    """The stand-in engine publishes the process-wide `sciserve_adapter_loaded` (with no
    adapters: every role 0); give the other tests in this process their values back."""
    before = {role: ADAPTER_LOADED.labels(role=role)._value.get() for role in ROLES}
    yield
    for role, value in before.items():
        ADAPTER_LOADED.labels(role=role).set(value)


@pytest.mark.usefixtures("adapter_gauges_restored")
async def test_engine_deaths_are_bounded_then_the_worker_gives_up(tiny_model: TinyModel) -> None:
    engine = MortalHfEngine(str(tiny_model.model_dir))
    queue = InProcessQueue()
    runtime = WorkerRuntime(engine, queue, tiny_settings(tiny_model, worker_concurrency=2))
    restarts_before = REGISTRY.get_sample_value("sciserve_engine_restarts_total") or 0.0
    request = SolveRequest.model_validate(
        {"problem": "1 + 1?", "strategy": {"tools": "never"}, "max_tokens": 8}
    )
    runtime.start_background()
    try:
        await _until(lambda: runtime.state == "ready")
        # Death under two running jobs: both are handed back, neither fails.
        engine.hold = True
        ids = [await queue.submit(request) for _ in range(2)]
        deadline = time.monotonic() + 10
        while [(await queue.status(i)).status for i in ids] != [JobState.running] * 2:
            assert time.monotonic() < deadline, "the jobs did not start"
            await asyncio.sleep(0.02)
        engine.hold = False
        engine.kill()
        await _until(lambda: runtime.state == "restarting")
        ready, reason = await runtime.readiness()
        assert not ready and "engine process died" in reason
        assert REGISTRY.get_sample_value("sciserve_engine_dead") == 1
        assert [(await queue.status(i)).status for i in ids] == [JobState.queued] * 2
        engine.allow_restart.set()
        statuses = [await queue.wait(i, timeout=30) for i in ids]
        assert [s.status for s in statuses] == [JobState.succeeded] * 2, statuses
        assert await runtime.readiness() == (True, "ready")
        assert REGISTRY.get_sample_value("sciserve_engine_dead") == 0
        # Idle deaths are noticed too; the last allowed restart, then one death too many.
        for _ in range(MAX_ENGINE_RESTARTS - 1):
            restarted = engine.restarts
            engine.kill()
            engine.allow_restart.set()
            await _until(lambda n=restarted: engine.restarts == n + 1)  # type: ignore[misc]
            await _until(lambda: runtime.state == "ready")
        engine.kill()
        await asyncio.wait_for(runtime.fatal.wait(), 10)
        assert runtime.state == "failed"
        ready, reason = await runtime.readiness()
        assert not ready and "gives up" in reason
        # Not supervised (embedded): further jobs get the reason instead of hanging.
        late = await queue.wait(await queue.submit(request), timeout=10)
        assert late.status == JobState.failed and late.error_code == "engine_unavailable"
        restarts = REGISTRY.get_sample_value("sciserve_engine_restarts_total") or 0.0
        assert restarts - restarts_before == MAX_ENGINE_RESTARTS == engine.restarts
    finally:
        await runtime.stop()
