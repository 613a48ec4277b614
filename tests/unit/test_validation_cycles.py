"""Validation: every cycle passes through a condition; input defaults match their type.

Spec ("Control flow", "Validation"): "Every cycle must pass through a
`condition` node" and load rejects "a cycle with no `condition`", reporting
all problems at once. A loop body that merely *contains* a condition is not
enough when another path around the loop avoids it (that cycle could never
end). docs/semantics.md ("Inputs"): a default is a value of the input's type, or an
explicit null (which makes the input optional).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine import WorkflowInvalid, load_workflow, run_workflow

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))

Doc = dict[str, Any]


def _node(spec: str) -> Doc:
    """``id:kind`` with kind i(nput), c(ondition), o(utput) or t(ransform, the default)."""
    node_id, _, kind = spec.partition(":")
    if kind == "i":
        return {"id": node_id, "type": "input"}
    if kind == "c":
        return {"id": node_id, "type": "condition", "config": {"expression": "iteration < 2"}}
    if kind == "o":
        return {"id": node_id, "type": "output", "config": {"value": "done"}}
    return {"id": node_id, "type": "transform", "config": {"expression": "1"}}


def _edge(spec: str) -> Doc:
    """``a>b`` or ``a>b=when``."""
    ends, _, when = spec.partition("=")
    source, target = ends.split(">")
    return {"source": source, "target": target, **({"when": when} if when else {})}


def graph(nodes: str, edges: str, **extra: Any) -> Doc:
    return {
        "format": "workflow/v1",
        "name": "cycles",
        "nodes": [_node(n) for n in nodes.split()],
        "edges": [_edge(e) for e in edges.split()],
        **extra,
    }


def problems_of(doc: Doc) -> list[str]:
    with pytest.raises(WorkflowInvalid) as info:
        load_workflow(doc)
    return [str(p) for p in info.value.problems]


# --------------------------------------------------------------------------- cycles

# (case, nodes, edges, the cycles that must be reported, each as "a -> b -> ... -> a")
REJECTED: list[tuple[str, str, str, list[str]]] = [
    (
        "condition beside the loop path (the reported repro)",
        "s:i h a c:c j o:o",
        "s>h h>a h>c a>j c>j=true c>o=false j>h",
        ["h -> a -> j -> h"],
    ),
    ("plain two-node cycle", "s:i a b o:o", "s>a a>b b>a b>o", ["a -> b -> a"]),
    ("self-loop", "s:i a o:o", "s>a a>a a>o", ["a -> a"]),
    (
        "unconditioned inner loop inside a conditioned outer loop",
        "s:i h a b c:c o:o",
        "s>h h>a a>b b>a b>c c>h=true c>o=false",
        ["a -> b -> a"],
    ),
    (
        "condition on a branch that rejoins inside the cycle",
        "s:i h x c:c y j o:o",
        "s>h h>x x>c x>j c>y=true c>o=false y>j j>h",
        ["h -> x -> j -> h"],
    ),
    (
        "two unconditioned cycles are both reported",
        "s:i a b c d o:o",
        "s>a a>b b>a s>c c>d d>c b>o d>o",
        ["a -> b -> a", "c -> d -> c"],
    ),
]


@pytest.mark.parametrize(("nodes", "edges", "cycles"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_a_cycle_that_avoids_every_condition_is_rejected_with_its_nodes(
    nodes: str, edges: str, cycles: list[str]
) -> None:
    reported = problems_of(graph(nodes, edges))
    for cycle in cycles:
        hits = [p for p in reported if cycle in p]
        assert hits, f"cycle {cycle} not reported; got:\n" + "\n".join(reported)
        assert all("condition" in p and "never end" in p for p in hits), hits
    cycle_problems = [p for p in reported if "cycle" in p]
    assert len(cycle_problems) == len(cycles), cycle_problems  # each cycle once


ACCEPTED: list[tuple[str, str, str]] = [
    ("condition closes the loop", "s:i h a c:c o:o", "s>h h>a a>c c>h=true c>o=false"),
    ("condition heads the loop", "s:i c:c a b o:o", "s>c c>a=true a>b b>c c>o=false"),
    ("condition in the middle of the loop", "s:i h c:c x o:o", "s>h h>c c>x=true x>h c>o=false"),
    (
        "both paths around the loop pass a condition",
        "s:i h c:c d:c j o:o",
        "s>h h>c h>d c>j=true d>j=true c>o=false d>o=false j>h",
    ),
    (
        "nested loops, each through its own condition",
        "s:i h a c1:c c2:c o:o",
        "s>h h>a a>c1 c1>a=true c1>c2=false c2>h=true c2>o=false",
    ),
    ("no cycle at all (diamond)", "s:i a b j o:o", "s>a s>b a>j b>j j>o"),
]


@pytest.mark.parametrize(("nodes", "edges"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_cycles_through_a_condition_still_validate(nodes: str, edges: str) -> None:
    load_workflow(graph(nodes, edges))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_still_validates(path: Path) -> None:
    load_workflow(path)


def test_cycle_problems_come_with_the_other_problems_at_once() -> None:
    doc = graph(
        "s:i h a c:c j o:o island",
        "s>h h>a h>c a>j c>j=true c>o=false j>h island>o",
        inputs={"n": {"type": "integer", "default": "abc"}},
    )
    reported = problems_of(doc)
    expected = ["edge j -> h", "h -> a -> j -> h", "island", "inputs.n"]
    missing = [e for e in expected if not any(e in p for p in reported)]
    assert not missing, f"not reported: {missing}\nreported:\n" + "\n".join(reported)


# --------------------------------------------------------------------------- input defaults


def one_input(spec: Doc) -> Doc:
    return {
        "format": "workflow/v1",
        "name": "defaults",
        "inputs": {"n": spec},
        "nodes": [
            {"id": "s", "type": "input"},
            {"id": "o", "type": "output", "config": {"value": "{{ inputs.n }}"}},
        ],
        "edges": [{"source": "s", "target": "o"}],
    }


# (input type, a default of the wrong type)
BAD_DEFAULTS: list[tuple[str, Any]] = [
    ("integer", "abc"),
    ("integer", 1.5),
    ("integer", True),
    ("number", "1"),
    ("number", False),
    ("string", 3),
    ("string", ["a"]),
    ("boolean", "true"),
    ("boolean", 0),
    ("object", []),
    ("object", "{}"),
    ("array", {}),
    ("array", "a,b"),
]


@pytest.mark.parametrize(("kind", "default"), BAD_DEFAULTS, ids=[f"{k}={d!r}" for k, d in BAD_DEFAULTS])
def test_a_default_of_the_wrong_type_is_rejected_naming_the_input(kind: str, default: Any) -> None:
    reported = problems_of(one_input({"type": kind, "default": default}))
    hits = [p for p in reported if "inputs.n" in p and "default" in p]
    assert hits, reported
    assert any(kind in p for p in hits), hits


# (input type, a good default, the value the run's output gets)
GOOD_DEFAULTS: list[tuple[str, Any]] = [
    *[(kind, None) for kind in ("string", "number", "integer", "boolean", "object", "array")],
    ("string", "cats"),
    ("string", ""),
    ("number", 1.5),
    ("number", 3),
    ("integer", 3),
    ("integer", 0),
    ("boolean", False),
    ("object", {"a": 1}),
    ("array", [1, "x"]),
]


@pytest.mark.parametrize(("kind", "default"), GOOD_DEFAULTS, ids=[f"{k}={d!r}" for k, d in GOOD_DEFAULTS])
def test_a_default_of_the_right_type_or_null_loads_and_is_used(kind: str, default: Any) -> None:
    workflow = load_workflow(one_input({"type": kind, "default": default}))
    assert not workflow.inputs["n"].required
    result = asyncio.run(run_workflow(workflow, {}))
    assert result.status == "completed", result
    assert result.result == {"o": default}
