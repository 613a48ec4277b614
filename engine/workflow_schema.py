"""The workflow/v1 JSON Schema, generated from the pydantic models of :mod:`engine.model`.

Why it exists: the HTTP API documents the body of ``POST /workflows`` with it, and an editor or a CI
job can check a workflow file with any JSON Schema validator. It is generated, never written by hand,
so it cannot drift from the models that :func:`engine.validate.load_workflow` applies.

What the generation adds to the models' own schemas is what :mod:`engine.validate` adds to the models:
the node ``config`` checked against its type's config model (``engine.model.CONFIG_MODELS``, as
``if``/``then`` per type, also for a map's inline node), input names that are ids, ``settings``,
``inputs`` and ``edges`` that may be ``null`` (read as absent) and an edge's ``when`` that may be a
boolean (read as ``"true"``/``"false"``).

Where it still differs from the validator (docs/workflow-format.md, "JSON Schema", lists the same and
tests/unit/test_workflow_schema.py checks each one):

- the validator alone checks the graph and the text inside strings: unique node ids, edges between
  existing nodes, exactly one input node, reachability, loops through a condition, ``when`` only on
  (and required on) a condition's edges, templates and expressions that parse, known tool names,
  unique output names, input defaults of the input's type;
- the validator alone accepts pydantic's lax forms: a number written as a string (``"10"``) and a
  whole float for an integer (``10.0``); and it reads any false-like ``settings``, ``inputs`` or
  ``edges`` (``false``, ``0``, ``""``, ``[]``) as absent, where the schema allows only ``null``.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from engine.model import CONFIG_MODELS, ID_PATTERN, MAP_INNER_TYPES, NODE_TYPES, Workflow

DIALECT = "https://json-schema.org/draft/2020-12/schema"
REF = "#/$defs/{model}"


def workflow_json_schema(*, inline: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow/v1 document; a fresh copy each call.

    ``inline=True`` replaces every ``$ref`` by the schema it names (there is no recursion), for
    embedding in another document such as the API's OpenAPI description, where ``#/$defs`` would
    point into the wrong document.
    """
    schema = _generated()
    if inline:
        defs = schema["$defs"]
        body = {k: v for k, v in schema.items() if k not in ("$defs", "$schema")}
        return _inline(body, defs)
    return copy.deepcopy(schema)


@functools.cache
def _generated() -> dict[str, Any]:
    models: list[type[BaseModel]] = [Workflow, *CONFIG_MODELS.values()]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    defs: dict[str, Any] = top["$defs"]
    root = defs.pop("Workflow")
    properties = root["properties"]
    for key in ("settings", "inputs", "edges"):  # validate.py reads null as absent
        properties[key] = {"anyOf": [properties[key], {"type": "null"}]}
    properties["inputs"]["anyOf"][0]["propertyNames"] = {"pattern": ID_PATTERN}
    when = defs["Edge"]["properties"]["when"]  # validate.py reads true/false as "true"/"false"
    when["anyOf"] = [{"type": "string"}, {"type": "boolean"}, {"type": "null"}]
    defs["Node"]["allOf"] = _config_by_type(NODE_TYPES)
    defs["InlineNode"]["properties"]["type"] = {"enum": list(MAP_INNER_TYPES), "type": "string", "title": "Type"}
    defs["InlineNode"]["allOf"] = _config_by_type(MAP_INNER_TYPES)
    root["title"] = "workflow/v1"
    root["description"] = "A workflow document (docs/workflow-format.md). Unknown keys are errors."
    return {"$schema": DIALECT, **root, "$defs": defs}


def _config_by_type(types: tuple[str, ...]) -> list[dict[str, Any]]:
    """One ``if type is T then config is T's config model`` per type (required when ``{}`` is not valid)."""
    rules = []
    for node_type in types:
        model = CONFIG_MODELS[node_type]
        then: dict[str, Any] = {"properties": {"config": {"$ref": REF.format(model=model.__name__)}}}
        if not _accepts_empty(model):
            then["required"] = ["config"]
        rules.append({"if": {"properties": {"type": {"const": node_type}}, "required": ["type"]}, "then": then})
    return rules


def _accepts_empty(model: type[BaseModel]) -> bool:
    try:
        model.model_validate({})
    except ValidationError:
        return False
    return True


def _inline(value: Any, defs: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(defs[ref.removeprefix("#/$defs/")], defs)
            rest = {k: _inline(v, defs) for k, v in value.items() if k != "$ref"}
            return {**target, **rest} if rest else target
        return {k: _inline(v, defs) for k, v in value.items()}
    if isinstance(value, list):
        return [_inline(v, defs) for v in value]
    return value


__all__ = ["DIALECT", "workflow_json_schema"]
