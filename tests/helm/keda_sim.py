"""A replay of KEDA's and the HPA's scaling rules over a queue trace, with the settings
read from the rendered ScaledObject.

What it models (KEDA 2.x scale loop and the Kubernetes HPA controller):
- Prometheus scrapes the gateway every `scrape_s`; KEDA and the HPA see the last scrape.
- KEDA, every pollingInterval: a trigger is active when its value > activationThreshold.
  At 0 replicas an active trigger scales to 1 (wake-up); when no trigger has been active
  for cooldownPeriod, it scales to minReplicaCount (0).
- The HPA, every 15 s while replicas > 0: each AverageValue metric wants
  ceil(value / threshold) replicas (no change within the 10 % tolerance); the highest
  wins, clamped to [1, maxReplicaCount]; scale-up limited by the Pods policy per 15 s,
  scale-down by the stabilization window (highest recommendation in it) and the Pods
  policy per 60 s.
- A worker serves after `cold_start_s` and then completes `rate` engine sequences per
  second, oldest job first; a job's weight is its expected engine sequences.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trigger:
    name: str
    threshold: float
    activation: float


@dataclass
class Settings:
    min_replicas: int
    max_replicas: int
    polling_s: int
    cooldown_s: int
    triggers: dict[str, Trigger]
    scale_up_pods_per_15s: int
    scale_down_pods_per_60s: int
    scale_down_window_s: int

    @classmethod
    def from_scaled_object(cls, obj: dict[str, Any]) -> Settings:
        spec = obj["spec"]
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        [up] = behavior["scaleUp"]["policies"]
        [down] = behavior["scaleDown"]["policies"]
        assert up["type"] == "Pods" and up["periodSeconds"] == 15
        assert down["type"] == "Pods" and down["periodSeconds"] == 60
        triggers = {}
        for t in spec["triggers"]:
            assert t["type"] == "prometheus" and t["metricType"] == "AverageValue"
            meta = t["metadata"]
            triggers[t["name"]] = Trigger(
                t["name"], float(meta["threshold"]), float(meta["activationThreshold"])
            )
        return cls(
            min_replicas=spec["minReplicaCount"],
            max_replicas=spec["maxReplicaCount"],
            polling_s=spec["pollingInterval"],
            cooldown_s=spec["cooldownPeriod"],
            triggers=triggers,
            scale_up_pods_per_15s=up["value"],
            scale_down_pods_per_60s=down["value"],
            scale_down_window_s=behavior["scaleDown"]["stabilizationWindowSeconds"],
        )


@dataclass
class Job:
    arrived: int
    weight: float
    left: float = 0.0

    def __post_init__(self) -> None:
        self.left = self.weight


@dataclass
class Timeline:
    replicas: list[int] = field(default_factory=list)  # per second
    ready: list[int] = field(default_factory=list)
    backlog: list[float] = field(default_factory=list)
    finished: list[tuple[int, int]] = field(default_factory=list)  # (arrived, done)


def simulate(
    settings: Settings,
    arrivals: dict[int, list[float]],
    duration_s: int,
    *,
    cold_start_s: int = 133,
    rate: float = 2.0,
    scrape_s: int = 15,
) -> Timeline:
    """Replay `arrivals` (second -> job weights) for `duration_s` seconds."""
    queue: deque[Job] = deque()
    replicas = 0
    starts: list[int] = []  # start second of each pod, oldest first
    seen = {"backlog": 0.0, "oldest-age": 0.0}
    last_active = -(10**9)
    recommendations: deque[tuple[int, int]] = deque()
    last_down = -(10**9)
    out = Timeline()
    for now in range(duration_s):
        for weight in arrivals.get(now, []):
            queue.append(Job(now, weight))
        if now % scrape_s == 0:  # the gateway's /metrics, scraped
            seen["backlog"] = sum(j.left for j in queue)
            seen["oldest-age"] = float(now - queue[0].arrived) if queue else 0.0
        if now % settings.polling_s == 0:  # KEDA's loop: activation and scale to zero
            active = any(seen[n] > t.activation for n, t in settings.triggers.items())
            if active:
                last_active = now
                if replicas == 0:
                    replicas = max(settings.min_replicas, 1)
            elif replicas > 0 and now - last_active >= settings.cooldown_s:
                replicas = settings.min_replicas
                recommendations.clear()
        if now % 15 == 0 and replicas > 0:  # the HPA's sync
            proposals = []
            for name, t in settings.triggers.items():
                ratio = seen[name] / (t.threshold * replicas)
                within_tolerance = abs(ratio - 1) <= 0.1
                proposals.append(
                    replicas if within_tolerance else math.ceil(seen[name] / t.threshold)
                )
            wanted = max(proposals)
            wanted = min(max(wanted, 1), settings.max_replicas)
            recommendations.append((now, wanted))
            while recommendations and recommendations[0][0] <= now - settings.scale_down_window_s:
                recommendations.popleft()
            if wanted > replicas:
                replicas = min(wanted, replicas + settings.scale_up_pods_per_15s)
            else:
                stable = max(r for _, r in recommendations)
                if stable < replicas and now - last_down >= 60:
                    replicas = max(stable, replicas - settings.scale_down_pods_per_60s)
                    last_down = now
        while len(starts) < replicas:
            starts.append(now)
        del starts[replicas:]  # the newest pods go first
        ready = sum(1 for s in starts if now - s >= cold_start_s)
        capacity = ready * rate
        while capacity > 0 and queue:
            job = queue[0]
            used = min(capacity, job.left)
            job.left -= used
            capacity -= used
            if job.left <= 1e-9:
                out.finished.append((job.arrived, now))
                queue.popleft()
        out.replicas.append(replicas)
        out.ready.append(ready)
        out.backlog.append(sum(j.left for j in queue))
    return out
