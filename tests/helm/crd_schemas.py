"""Prints strict JSON schemas of the chart's CRD kinds (run by .tools/venv's Python).

cloudcoil's pydantic models of KEDA (2.16) and prometheus-operator (0.80) ignore unknown
fields when validating; their JSON schemas with `additionalProperties: false` on every
object with known properties catch a misspelt field instead.
"""

from __future__ import annotations

import json
from typing import Any

from cloudcoil.models.keda.v1alpha1 import ScaledObject
from cloudcoil.models.prometheus_operator.v1 import PodMonitor, PrometheusRule, ServiceMonitor


def strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: strict(value) for key, value in node.items()}
        if "(?i)" in str(node.get("pattern", "")):  # Go's inline flag: not an ECMA regex
            del node["pattern"]
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        return node
    if isinstance(node, list):
        return [strict(item) for item in node]
    return node


if __name__ == "__main__":
    models = (ScaledObject, ServiceMonitor, PodMonitor, PrometheusRule)
    print(json.dumps({m.__name__: strict(m.model_json_schema(by_alias=True)) for m in models}))
