"""A small evaluator of Kubernetes NetworkPolicy semantics, for the rendered policies.

No CNI runs here; this reads the policies the way the API defines them: a pod selected
by any policy of a direction is isolated in that direction, and traffic is allowed only
when an egress rule of the source and an ingress rule of the destination both match it
(label selectors with matchLabels and matchExpressions; namespaceSelector; ports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    namespace: str
    namespace_labels: dict[str, str] = field(default_factory=dict)


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # pods of the cluster are not addressed by ipBlock here
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), other.labels)


def _rule_allows(rule: dict[str, Any], peer_key: str, other: Pod, port: int, ns: str) -> bool:
    peers = rule.get(peer_key)
    if peers is not None and not any(_peer_matches(p, other, ns) for p in peers):
        return False
    ports = rule.get("ports")
    return ports is None or any(p.get("port") in (None, port) for p in ports)


def _direction_allows(
    policies: list[dict[str, Any]], pod: Pod, other: Pod, port: int, direction: str
) -> bool:
    key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    applying = [
        p for p in policies
        if p["metadata"].get("namespace", pod.namespace) == pod.namespace
        and selects(p["spec"]["podSelector"], pod.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]  # fmt: skip
    if not applying:
        return True  # not isolated in this direction
    return any(
        _rule_allows(rule, peer_key, other, port, pod.namespace)
        for p in applying
        for rule in p["spec"].get(key) or []
    )


def allowed(policies: list[dict[str, Any]], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `source` may open a TCP connection to `destination` on `port`."""
    return _direction_allows(policies, source, destination, port, "Egress") and (
        _direction_allows(policies, destination, source, port, "Ingress")
    )
