"""The worker autoscaler replayed on a queue trace (burst, idle, burst) with the chart's
ScaledObject: zero replicas when idle, wake-up on the first queued job, scale-out on the
strategy-weighted backlog, back to zero after the cooldown, and a second wake-up.

Simulation (tests/helm/keda_sim.py), not a cluster: KEDA's and the HPA's published
rules are replayed; a real cluster adds controller and image-pull latency.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from contract.schemas import Strategy
from tests.helm.keda_sim import Settings, simulate
from tests.helm.tools import FULLNAME, one

DIRECT = Strategy(tools="never").expected_engine_sequences()
VOTE8 = Strategy(samples=8).expected_engine_sequences()
START = 60  # the first burst starts after a minute of idle
SECOND_BURST = 1800


@pytest.fixture(scope="module")
def settings(defaults: list[dict[str, Any]]) -> Settings:
    return Settings.from_scaled_object(one(defaults, "ScaledObject", f"{FULLNAME}-worker"))


def _trace(heavy: bool) -> dict[int, list[float]]:
    """Idle, burst (one minute from START), idle, burst at SECOND_BURST."""
    arrivals: dict[int, list[float]] = {}
    for i in range(200):
        arrivals.setdefault(START + i * 60 // 200, []).append(DIRECT)
    if heavy:
        for i in range(40):
            arrivals.setdefault(START + i * 60 // 40, []).append(VOTE8)
    for i in range(60):
        arrivals.setdefault(SECOND_BURST + i, []).append(4 * DIRECT)
    return arrivals


def test_chart_settings_scale_to_zero(settings: Settings) -> None:
    assert settings.min_replicas == 0
    assert settings.triggers["backlog"].activation == 0  # the first job wakes the pool
    assert DIRECT == 1 and VOTE8 == 8


def test_burst_idle_burst(settings: Settings) -> None:
    timeline = simulate(settings, _trace(heavy=True), duration_s=2700)
    r = timeline.replicas
    poll = settings.polling_s
    # Zero while idle; the first job wakes the pool within one scrape plus one KEDA poll.
    assert set(r[:START]) == {0}
    woke = next(t for t in range(START, len(r)) if r[t] > 0)
    assert woke - START <= 15 + poll
    # Weighted backlog: 200 direct + 40 samples:8 = 520 sequences -> ceil(520/64) = 9,
    # clamped to maxReplicaCount, reached through the 4-pods-per-15s policy.
    backlog = 200 * DIRECT + 40 * VOTE8
    assert math.ceil(backlog / settings.triggers["backlog"].threshold) > settings.max_replicas
    assert max(r[:SECOND_BURST]) == settings.max_replicas
    # The burst lasts a minute; the pool is full one HPA sync after it ends.
    first_max = r.index(settings.max_replicas)
    assert first_max <= START + 60 + 15, f"reached {settings.max_replicas} only at {first_max}s"
    # Every job of the first burst finishes; then the pool goes to zero after the cooldown.
    first = [done for arrived, done in timeline.finished if arrived < SECOND_BURST]
    assert len(first) == 240
    drained = max(first)
    zero_at = next(t for t in range(drained, SECOND_BURST) if r[t] == 0)
    assert drained + settings.cooldown_s <= zero_at <= drained + settings.cooldown_s + 2 * poll + 15
    assert all(x == 0 for x in r[zero_at:SECOND_BURST])
    # Second burst: wake-up from zero within a scrape and a poll, then every job finishes.
    woke = next(t for t in range(SECOND_BURST, len(r)) if r[t] > 0)
    assert woke - SECOND_BURST <= 15 + poll
    assert len(timeline.finished) == 300
    # Cold start: the first job waits for one engine start (133 s) plus the wake-up.
    first_done = min(done for arrived, done in timeline.finished if arrived == START)
    assert START + 133 <= first_done <= START + 133 + 15 + poll + 5


def test_weighting_changes_the_pool_size(settings: Settings) -> None:
    """The same number of jobs with samples:8 needs more workers than direct ones."""
    light = simulate(settings, _trace(heavy=False), duration_s=SECOND_BURST)
    heavy = simulate(settings, _trace(heavy=True), duration_s=SECOND_BURST)
    wanted = math.ceil(200 * DIRECT / settings.triggers["backlog"].threshold)  # 4
    # 200 / (64 x 3) = 1.04 is inside the HPA's 10 % tolerance: 3 workers stay 3.
    assert max(light.replicas) in (wanted - 1, wanted)
    assert max(heavy.replicas) == settings.max_replicas > max(light.replicas)
