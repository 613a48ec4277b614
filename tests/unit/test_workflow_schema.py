"""The generated workflow/v1 JSON Schema agrees with engine.validate, except where its docstring says.

Every example validates; every broken document below is refused by both; the documented differences
(graph checks only the validator makes, lax forms only the validator accepts) hold exactly as written,
so a change to either side shows up here. docs/workflow-v1.schema.json is the generated schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.errors import WorkflowInvalid
from engine.validate import load_workflow
from engine.workflow_schema import workflow_json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".json", ".yaml", ".yml"))
SCHEMA_FILE = ROOT / "docs" / "workflow-v1.schema.json"

VALIDATOR = jsonschema.Draft202012Validator(workflow_json_schema())

BASE: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "base",
    "settings": {"max_iterations": 5},
    "inputs": {"topic": {"type": "string", "default": "x"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "check", "type": "condition", "config": {"expression": "inputs.topic == 'x'"}},
        {"id": "write", "type": "agent", "config": {"prompt": "About {{ inputs.topic }}"}, "retry": {"attempts": 2}},
        {
            "id": "each",
            "type": "map",
            "config": {"items": "[1, 2]", "node": {"type": "transform", "config": {"expression": "item * 2"}}},
        },
        {"id": "done", "type": "output", "config": {"value": "{{ nodes.write.output }}"}},
    ],
    "edges": [
        {"source": "start", "target": "check"},
        {"source": "check", "target": "write", "when": "true"},
        {"source": "check", "target": "each", "when": "default"},
        {"source": "write", "target": "done"},
        {"source": "each", "target": "done"},
    ],
}


def _validator_accepts(document: Any) -> bool:
    try:
        load_workflow(document)
    except WorkflowInvalid:
        return False
    return True


def _schema_accepts(document: Any) -> bool:
    return VALIDATOR.is_valid(document)


def _edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    change(document)
    return document


def _node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in document["nodes"] if n["id"] == node_id)


def _without_inputs(document: dict[str, Any], inputs: Any) -> None:
    """``inputs`` set to a false-like value, and a graph that uses none."""
    document.update(
        inputs=inputs,
        nodes=[{"id": "start", "type": "input"}, {"id": "t", "type": "transform", "config": {"expression": "1"}}],
        edges=[{"source": "start", "target": "t"}],
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(workflow_json_schema())
    inline = workflow_json_schema(inline=True)
    jsonschema.Draft202012Validator.check_schema(inline)
    assert "$ref" not in json.dumps(inline)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_valid_for_the_schema_and_the_validator(path: Path) -> None:
    document = yaml.safe_load(path.read_text()) if path.suffix != ".json" else json.loads(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert errors == []
    assert _validator_accepts(document)
    assert jsonschema.Draft202012Validator(workflow_json_schema(inline=True)).is_valid(document)


def test_the_base_document_is_valid_for_both() -> None:
    assert _schema_accepts(BASE) and _validator_accepts(BASE)


BROKEN: dict[str, Callable[[dict[str, Any]], None]] = {
    "no format": lambda d: d.pop("format"),
    "another format": lambda d: d.update(format="workflow/v2"),
    "unknown top-level key": lambda d: d.update(nodez=[]),
    "no name": lambda d: d.pop("name"),
    "empty name": lambda d: d.update(name=""),
    "a name of spaces": lambda d: d.update(name="   "),
    "description not a string": lambda d: d.update(description=3),
    "description null": lambda d: d.update(description=None),
    "no nodes": lambda d: d.pop("nodes"),
    "empty nodes": lambda d: d.update(nodes=[]),
    "nodes not a list": lambda d: d.update(nodes={"start": {}}),
    "settings unknown key": lambda d: d["settings"].update(max_iteration=3),
    "settings max_iterations 0": lambda d: d["settings"].update(max_iterations=0),
    "settings timeout_s 0": lambda d: d["settings"].update(timeout_s=0),
    "settings a string": lambda d: d.update(settings="fast"),
    "inputs a string": lambda d: d.update(inputs="topic"),
    "input name not an id": lambda d: d["inputs"].update({"a topic": {"type": "string"}}),
    "input type unknown": lambda d: d["inputs"]["topic"].update(type="text"),
    "input spec unknown key": lambda d: d["inputs"]["topic"].update(required=True),
    "node id not an id": lambda d: _node(d, "write").update(id="1write"),
    "node unknown type": lambda d: _node(d, "write").update(type="llm"),
    "node without type": lambda d: _node(d, "write").pop("type"),
    "node unknown key": lambda d: _node(d, "write").update(prompt="x"),
    "node retry attempts 0": lambda d: _node(d, "write").update(retry={"attempts": 0}),
    "node retry unknown key": lambda d: _node(d, "write").update(retry={"tries": 2}),
    "node timeout_s negative": lambda d: _node(d, "write").update(timeout_s=-1),
    "agent without config": lambda d: _node(d, "write").pop("config"),
    "agent without prompt": lambda d: _node(d, "write").update(config={"system": "x"}),
    "agent config unknown key": lambda d: _node(d, "write")["config"].update(temprature=0.5),
    "agent temperature 3": lambda d: _node(d, "write")["config"].update(temperature=3),
    "agent response_format xml": lambda d: _node(d, "write")["config"].update(response_format="xml"),
    "agent memory without agent_id": lambda d: _node(d, "write")["config"].update(memory={"recall": 2}),
    "agent tools not a list": lambda d: _node(d, "write")["config"].update(tools="web_search"),
    "condition without expression": lambda d: _node(d, "check").update(config={}),
    "input node with config": lambda d: _node(d, "start").update(config={"x": 1}),
    "output without value": lambda d: _node(d, "done").update(config={"name": "x"}),
    "output empty name": lambda d: _node(d, "done")["config"].update(name=""),
    "map without node": lambda d: _node(d, "each")["config"].pop("node"),
    "map concurrency 0": lambda d: _node(d, "each")["config"].update(concurrency=0),
    "map inner node an output": lambda d: _node(d, "each")["config"]["node"].update(type="output"),
    "map inner config unknown key": lambda d: _node(d, "each")["config"]["node"]["config"].update(x=1),
    "map inner agent without prompt": lambda d: _node(d, "each")["config"].update(node={"type": "agent"}),
    "tool node without tool": lambda d: d["nodes"].append({"id": "t", "type": "tool", "config": {"args": {}}}),
    "edges an object": lambda d: d.update(edges={"start": "check"}),
    "edge without target": lambda d: d["edges"][0].pop("target"),
    "edge unknown key": lambda d: d["edges"][0].update(label="x"),
    "edge when a number": lambda d: d["edges"][1].update(when=1),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=list(BROKEN))
def test_a_broken_document_is_refused_by_both(change: Callable[[dict[str, Any]], None]) -> None:
    document = _edit(change)
    assert not _validator_accepts(document)
    assert not _schema_accepts(document)


# What the schema cannot see: the graph and the text inside strings (engine.workflow_schema's docstring).
ONLY_THE_VALIDATOR_REFUSES: dict[str, Callable[[dict[str, Any]], None]] = {
    "duplicate node id": lambda d: d["nodes"].append({"id": "write", "type": "transform", "config": {}}),
    "edge to an unknown node": lambda d: d["edges"].append({"source": "write", "target": "nowhere"}),
    "no input node": lambda d: _node(d, "start").update(type="transform"),
    "two input nodes": lambda d: d["nodes"].append({"id": "again", "type": "input"}),
    "a node not reachable": lambda d: d["nodes"].append({"id": "lost", "type": "transform", "config": {}}),
    "a loop without a condition": lambda d: d["edges"].append({"source": "done", "target": "write"}),
    "a condition edge without when": lambda d: d["edges"][1].pop("when"),
    "when on an edge not from a condition": lambda d: d["edges"][0].update(when="x"),
    "a template that does not parse": lambda d: _node(d, "write")["config"].update(prompt="{{ inputs.topic "),
    "an expression that does not parse": lambda d: _node(d, "check")["config"].update(expression="1 +"),
    "an unknown tool": lambda d: _node(d, "write")["config"].update(tools=["no_such_tool"]),
    "two outputs of one name": lambda d: d["nodes"].append(
        {"id": "done2", "type": "output", "config": {"value": "x", "name": "done"}}
    ),
    "an input default of another type": lambda d: d["inputs"]["topic"].update(default=3),
}

# The validator's lax forms (pydantic's lax mode; false-like settings/inputs/edges read as absent).
ONLY_THE_VALIDATOR_ACCEPTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "a number written as a string": lambda d: d["settings"].update(max_iterations="10"),
    "a timeout written as a string": lambda d: d["settings"].update(timeout_s="60"),
    "settings false": lambda d: d.update(settings=False),
    "inputs an empty list": lambda d: _without_inputs(d, []),
    "edges 0": lambda d: d.update(nodes=d["nodes"][:1], edges=0),
}

# Read as the validator reads them, and allowed by the schema too.
BOTH_ACCEPT: dict[str, Callable[[dict[str, Any]], None]] = {
    "settings null": lambda d: d.update(settings=None),
    "inputs null": lambda d: _without_inputs(d, None),
    "edges null": lambda d: d.update(nodes=d["nodes"][:1], edges=None),
    "when a boolean": lambda d: d["edges"][1].update(when=True),
    "a whole float for an integer": lambda d: d["settings"].update(max_iterations=10.0),
    "position with extra keys": lambda d: _node(d, "write").update(position={"x": 1, "y": 2, "z": 3}),
    "input node without config": lambda d: _node(d, "start").pop("config", None),
}


@pytest.mark.parametrize("change", ONLY_THE_VALIDATOR_REFUSES.values(), ids=list(ONLY_THE_VALIDATOR_REFUSES))
def test_graph_and_text_problems_are_refused_by_the_validator_only(change: Callable[[dict[str, Any]], None]) -> None:
    document = _edit(change)
    assert _schema_accepts(document)
    assert not _validator_accepts(document)


@pytest.mark.parametrize("change", ONLY_THE_VALIDATOR_ACCEPTS.values(), ids=list(ONLY_THE_VALIDATOR_ACCEPTS))
def test_lax_forms_are_accepted_by_the_validator_only(change: Callable[[dict[str, Any]], None]) -> None:
    document = _edit(change)
    assert _validator_accepts(document)
    assert not _schema_accepts(document)


@pytest.mark.parametrize("change", BOTH_ACCEPT.values(), ids=list(BOTH_ACCEPT))
def test_forms_the_validator_reads_are_accepted_by_both(change: Callable[[dict[str, Any]], None]) -> None:
    document = _edit(change)
    assert _validator_accepts(document)
    assert _schema_accepts(document)


def test_the_schema_file_in_docs_is_the_generated_schema() -> None:
    """docs/workflow-v1.schema.json is regenerated by `python3 scripts/workflow_schema.py`."""
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == workflow_json_schema()
