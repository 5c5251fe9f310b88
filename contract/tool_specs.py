"""A tool's function spec as the policy is shown it (`policy_spec`).

A tool server's manifest is generated from its pydantic argument model
(tool_servers/base.py), so it also carries what a model never uses: a `title` on every
field, `anyOf` with `null` for every optional one, `$defs` references, numeric bounds
the server checks anyway, and server knobs that are not AWL's arguments (`numerics`,
`sample_interval`, `grid_points`) or that AWL's schemas listed and its simulations
ignore (`stiffness`). Rendered in AWL's layout (indented JSON), one MuJoCo scene's
manifest spec is 1,000-1,950 tokens of Qwen2.5's tokenizer and this view 390-900, which
is what lets a whole tool trajectory fit a 1,536-token training example.

The server still validates against its full model: what it refused, it refuses, and its
error message names the field and the bound.
"""

from __future__ import annotations

from typing import Any

# Knobs of sciserve's servers a policy never sets (the server's defaults serve it).
SERVER_KNOBS = frozenset({"numerics", "sample_interval", "grid_points"})
# tool_servers/mechanics.py describes the arguments AWL's schemas list but its
# simulations never read with this phrase.
UNUSED_MARK = "not used by the simulation"
VALIDATION_KEYS = frozenset(
    {
        "title",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "additionalProperties",
    }
)


def policy_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` (an OpenAI-style function spec from a `/manifest`) with only what the
    policy reads: name, description, and each argument's type, enum, default and
    description."""
    function = spec["function"]
    parameters = function.get("parameters") or {}
    definitions = parameters.get("$defs", {})
    properties = {
        name: _plain(schema, definitions)
        for name, schema in parameters.get("properties", {}).items()
        if name not in SERVER_KNOBS and UNUSED_MARK not in str(schema.get("description", ""))
    }
    shown: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name in parameters.get("required", []) if name in properties]
    if required:
        shown["required"] = required
    return {
        "type": "function",
        "function": {
            "name": function["name"],
            "description": function.get("description", ""),
            "parameters": shown,
        },
    }


def _plain(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """One argument's schema without validation detail; `$ref`s inlined."""
    if "$ref" in schema:
        return _plain(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    out = {k: v for k, v in schema.items() if k not in VALIDATION_KEYS and k != "$defs"}
    options = out.pop("anyOf", None)
    if options is not None:
        kept = [_plain(o, definitions) for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            out = {**kept[0], **out}
        else:
            out["anyOf"] = kept
        if "default" in out and out["default"] is None:
            del out["default"]  # optional: "not given" says the same
    if isinstance(out.get("items"), dict):
        out["items"] = _plain(out["items"], definitions)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _plain(v, definitions) for k, v in out["properties"].items()}
    return out


def policy_tools(
    question: str, domain: str | None, specs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The tools the policy is shown for a question, as it reads them: a MuJoCo scene
    question sees its scene's own tool only (AWL's layout; the whole mechanics server is
    27k characters of schemas), every other question its domain's tools. The served
    prompt (workers/strategies/awl.py) and the teacher's trajectories
    (entrypoints/teacher) both come from here, so a trained policy is served the layout
    it was trained on."""
    from contract.awl_questions import scene_tool

    if domain == "mechanics":
        tool = scene_tool(question)
        own = [spec for spec in specs if spec["function"]["name"] == tool]
        specs = own or specs
    return [policy_spec(spec) for spec in specs]
