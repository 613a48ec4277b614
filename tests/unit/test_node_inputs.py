"""Every node type records its input as rendered (issue 14): the ``input`` of ``node.completed``/``node.failed``.

The node panel shows it beside the output. Agent and tool nodes recorded theirs (messages, tool args);
input, transform, condition, map and output nodes recorded nothing, so the panel said "not recorded".
Now each records its template or expression and the values it read, a condition the edges it took
(through loop iterations too), and a render that fails still leaves what it read.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from engine import run_workflow
from engine.events import Event
from engine.model import NodeType
from engine.nodes.base import reads
from engine.runtime import Runtime
from engine.templates import compile_expression

EVERY_KIND: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "every kind",
    "inputs": {"n": {"type": "integer", "default": 2}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "count", "type": "transform", "config": {"expression": "iteration + 1"}},
        {"id": "again", "type": "condition",
         "config": {"expression": "'more' if nodes.count.output < inputs.n else 'done'"}},
        {"id": "calc", "type": "tool",
         "config": {"tool": "calculator", "args": {"expression": "{{ nodes.count.output }} * 3"}}},
        {"id": "each", "type": "map",
         "config": {"items": "range(inputs.n)", "node": {"type": "transform", "config": {"expression": "item * 2"}}}},
        {"id": "words", "type": "transform", "config": {"template": "{{ inputs.n }} rounds, {{ nodes.calc.output }}"}},
        {"id": "result", "type": "output",
         "config": {"name": "answer", "value": {"calc": "{{ nodes.calc.output }}", "each": "{{ nodes.each.output }}"}}},
    ],
    "edges": [
        {"source": "start", "target": "count"},
        {"source": "count", "target": "again"},
        {"source": "again", "target": "count", "when": "more"},
        {"source": "again", "target": "calc", "when": "done"},
        {"source": "calc", "target": "each"},
        {"source": "each", "target": "words"},
        {"source": "words", "target": "result"},
    ],
}  # fmt: skip


def inputs_of(events: list[Event], node: str) -> list[Any]:
    return [e.data.get("input") for e in events if e.node_id == node and e.type in ("node.completed", "node.failed")]


def test_every_node_type_records_what_it_rendered_from() -> None:
    result = asyncio.run(run_workflow(EVERY_KIND, {}))
    assert result.status == "completed", result.error
    assert result.result == {"answer": {"calc": 6, "each": [0, 2]}}
    events = result.events
    assert inputs_of(events, "start") == [{"inputs": {"n": 2}}]
    assert inputs_of(events, "count") == [
        {"expression": "iteration + 1", "reads": {"iteration": 0}},
        {"expression": "iteration + 1", "reads": {"iteration": 1}},
    ]
    expression = "'more' if nodes.count.output < inputs.n else 'done'"
    assert inputs_of(events, "again") == [  # each iteration: what it read and the edge it took
        {"expression": expression, "reads": {"nodes.count.output": 1, "inputs.n": 2},
         "when": "more", "taken": ["count"]},
        {"expression": expression, "reads": {"nodes.count.output": 2, "inputs.n": 2},
         "when": "done", "taken": ["calc"]},
    ]  # fmt: skip
    assert inputs_of(events, "calc") == [{"tool": "calculator", "args": {"expression": "2 * 3"}}]
    assert inputs_of(events, "each") == [{"expression": "range(inputs.n)", "reads": {"inputs.n": 2}, "items": 2}]
    assert inputs_of(events, "words") == [
        {"template": "{{ inputs.n }} rounds, {{ nodes.calc.output }}",
         "reads": {"nodes.calc.output": 6, "inputs.n": 2}},
    ]  # fmt: skip
    assert inputs_of(events, "result") == [
        {"name": "answer", "reads": {"nodes.calc.output": 6, "nodes.each.output": [0, 2]}}
    ]
    kinds = {n["type"] for n in EVERY_KIND["nodes"]}
    # agent: test_agent_node; approval (it waits for a person): the test below
    assert kinds == set(NodeType.__args__) - {"agent", "approval"}  # type: ignore[attr-defined]


GATE: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "gate",
    "inputs": {"text": {"type": "string", "default": "hello"}},
    "nodes": [
        {"id": "in", "type": "input"},
        {"id": "ok", "type": "approval",
         "config": {"message": "Send {{ inputs.text }}?", "fields": {"body": "{{ inputs.text }}!"}}},
        {"id": "sent", "type": "output", "config": {"value": "{{ nodes.ok.output.fields.body }}"}},
        {"id": "dropped", "type": "output", "config": {"value": "dropped"}},
    ],
    "edges": [
        {"source": "in", "target": "ok"},
        {"source": "ok", "target": "sent", "when": "approve"},
        {"source": "ok", "target": "dropped", "when": "reject"},
    ],
}  # fmt: skip


def test_an_approval_records_the_request_it_showed_its_decision_route_and_wait(tmp_path: Path) -> None:
    with Runtime(data_dir=str(tmp_path / "data"), approval_sweep_s=3600) as rt:
        run_id = rt.submit(GATE)
        deadline = time.monotonic() + 30
        while rt.wait(run_id, timeout=1).status != "waiting":
            assert time.monotonic() < deadline, "the run never waited"
        time.sleep(0.3)  # the person takes a while: the node's duration is that wait
        rt.decide(run_id, "ok", "approve", fields={"body": "edited"}, decided_by="ann")
        while rt.wait(run_id, timeout=1).status != "completed":
            assert time.monotonic() < deadline, "the run never completed"
        [done] = [e for e in rt.reader.events(run_id) if e.type == "node.completed" and e.node_id == "ok"]
    assert done.data["input"] == {
        "message": "Send hello?",
        "fields": {"body": "hello!"},  # as shown; the decision's edit is the output
        "reads": {"inputs.text": "hello"},
        "when": "approve",
        "taken": ["sent"],
    }
    assert done.data["output"]["fields"] == {"body": "edited"}
    assert 300 <= done.data["duration_ms"] < 30_000


def test_a_failed_render_still_records_what_it_read() -> None:
    doc = {
        "format": "workflow/v1",
        "name": "bad render",
        "inputs": {"x": {"type": "string", "default": "abc"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "half", "type": "transform", "config": {"expression": "inputs.x / 2"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.half.output }}"}},
        ],
        "edges": [{"source": "start", "target": "half"}, {"source": "half", "target": "out"}],
    }
    result = asyncio.run(run_workflow(doc, {}))
    assert result.status == "failed" and result.node_id == "half"
    assert inputs_of(result.events, "half") == [{"expression": "inputs.x / 2", "reads": {"inputs.x": "abc"}}]


def test_a_condition_that_matches_no_edge_records_the_default_it_took() -> None:
    doc = {
        "format": "workflow/v1",
        "name": "default route",
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "route", "type": "condition", "config": {"expression": "'neither'"}},
            {"id": "yes", "type": "output", "config": {"value": "yes"}},
            {"id": "other", "type": "output", "config": {"value": "other"}},
        ],
        "edges": [
            {"source": "start", "target": "route"},
            {"source": "route", "target": "yes", "when": "yes"},
            {"source": "route", "target": "other", "when": "default"},
        ],
    }
    result = asyncio.run(run_workflow(doc, {}))
    assert result.status == "completed", result.error
    assert inputs_of(result.events, "route") == [
        {"expression": "'neither'", "reads": {}, "when": "default", "taken": ["other"]}
    ]
    assert inputs_of(result.events, "other") == [{"reads": {}}]


SCOPE = {"item": "i", "index": 3, "iteration": 0}


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("inputs", {"inputs": {"a": 1, "b": 2}}, {"inputs": {"a": 1, "b": 2}}),  # read whole: every input
        ("inputs.b + inputs.a", {"inputs": {"a": 1, "b": 2}}, {"inputs.a": 1, "inputs.b": 2}),  # by name, sorted
        (
            "nodes.z.output ~ nodes.a.output",  # by id; a node without an output reads None
            {"nodes": {"a": {"output": "x"}}},
            {"nodes.a.output": "x", "nodes.z.output": None},
        ),
        ("item ~ index ~ iteration", SCOPE, SCOPE),
        ("index", {"iteration": 0}, {}),  # a name the variables lack is not recorded
        ("1 + 2", {"inputs": {"a": 1}}, {}),
    ],
)
def test_reads_records_what_a_template_reads(source: str, variables: dict[str, Any], expected: dict[str, Any]) -> None:
    compiled = compile_expression(source)
    assert reads([compiled, None], variables) == expected
    assert list(reads([compiled], variables)) == list(expected)  # in the same order every time
