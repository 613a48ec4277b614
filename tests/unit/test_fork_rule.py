"""Rerun from a node: which nodes run again (the rule in engine/fork.py and docs/semantics.md), and what
a fork's executor run reuses, skips and re-decides. Table-driven over small graphs of pure nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine import load_workflow
from engine.errors import ForkInvalid
from engine.executor import execute
from engine.fork import ForkRequest, fork_record, fork_replay, request_of, rerun_nodes
from engine.llm.offline_model import OfflineChatModel

Doc = dict[str, Any]


def doc(nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str] | tuple[str, str, str]]) -> Doc:
    return {
        "format": "workflow/v1",
        "name": "fork-rule",
        "inputs": {"n": {"type": "number", "default": 1}},
        "settings": {"max_iterations": 20},
        "nodes": [{"id": "start", "type": "input"}] + [{"id": i, "type": t, "config": c} for i, t, c in nodes],
        "edges": [
            {"source": e[0], "target": e[1], **({"when": e[2]} if len(e) == 3 else {})}  # type: ignore[misc]
            for e in edges
        ],
    }


def t(expr: str) -> dict[str, Any]:
    return {"expression": expr}


CHAIN = doc(
    [
        ("a", "transform", t("1")),
        ("b", "transform", t("2")),
        ("c", "transform", t("3")),
        ("out", "output", {"value": "{{ nodes.c.output }}"}),
    ],
    [("start", "a"), ("a", "b"), ("b", "c"), ("c", "out")],
)
PARALLEL = doc(
    [
        ("x", "transform", t("1")),
        ("y", "transform", t("2")),
        ("join", "transform", t("3")),
        ("out", "output", {"value": "x"}),
    ],
    [("start", "x"), ("start", "y"), ("x", "join"), ("y", "join"), ("join", "out")],
)
BRANCHY = doc(
    [
        ("total", "transform", t("inputs.n + 10")),
        ("is_big", "condition", t("nodes.total.output > 100")),
        ("big", "transform", {"template": "big {{ nodes.total.output }}"}),
        ("small", "transform", {"template": "small {{ nodes.total.output }}"}),
        ("done", "output", {"name": "answer", "value": "{{ nodes.big.output or nodes.small.output }}"}),
    ],
    [
        ("start", "total"),
        ("total", "is_big"),
        ("is_big", "big", "true"),
        ("is_big", "small", "default"),
        ("big", "done"),
        ("small", "done"),
    ],
)
# start -> a -> h -> body -> check -(true)-> h ; check -(default)-> after -> out ; start -> side -> out
LOOP = doc(
    [
        ("a", "transform", t("0")),
        ("side", "transform", t("'side'")),
        ("h", "transform", t("iteration")),
        ("body", "transform", t("nodes.h.output * 10")),
        ("check", "condition", t("iteration < 2")),
        ("after", "transform", t("nodes.body.output")),
        ("out", "output", {"value": "{{ nodes.after.output }} {{ nodes.side.output }}"}),
    ],
    [
        ("start", "a"),
        ("a", "h"),
        ("h", "body"),
        ("body", "check"),
        ("check", "h", "true"),
        ("check", "after", "default"),
        ("after", "out"),
        ("start", "side"),
        ("side", "out"),
    ],
)
# outer loop h1 .. c1 holding an inner loop h2 .. c2
NESTED = doc(
    [
        ("h1", "transform", t("1")),
        ("h2", "transform", t("2")),
        ("b2", "transform", t("3")),
        ("c2", "condition", t("iteration < 1")),
        ("c1", "condition", t("iteration < 1")),
        ("end", "output", {"value": "x"}),
    ],
    [
        ("start", "h1"),
        ("h1", "h2"),
        ("h2", "b2"),
        ("b2", "c2"),
        ("c2", "h2", "true"),
        ("c2", "c1", "default"),
        ("c1", "h1", "true"),
        ("c1", "end", "default"),
    ],
)
# p feeds u, a node of a loop p is not in: rerunning p reruns that loop whole
INTO_LOOP = doc(
    [
        ("p", "transform", t("1")),
        ("h", "transform", t("2")),
        ("u", "transform", t("3")),
        ("check", "condition", t("iteration < 1")),
        ("end", "output", {"value": "x"}),
    ],
    [
        ("start", "p"),
        ("start", "h"),
        ("p", "u"),
        ("h", "u"),
        ("u", "check"),
        ("check", "h", "true"),
        ("check", "end", "default"),
    ],
)
MAP = doc(
    [
        ("items", "transform", t("[1, 2, 3]")),
        ("each", "map", {"items": "nodes.items.output", "node": {"type": "transform", "config": t("item * 2")}}),
        ("out", "output", {"value": "{{ nodes.each.output }}"}),
    ],
    [("start", "items"), ("items", "each"), ("each", "out")],
)


@pytest.mark.parametrize(
    ("document", "picked", "reruns"),
    [
        (CHAIN, "c", ["c", "out"]),
        (CHAIN, "start", ["start", "a", "b", "c", "out"]),
        (PARALLEL, "x", ["x", "join", "out"]),
        (BRANCHY, "big", ["big", "done"]),
        (BRANCHY, "is_big", ["is_big", "big", "small", "done"]),
        (LOOP, "body", ["h", "body", "check", "after", "out"]),  # inside a loop: the whole loop
        (LOOP, "check", ["h", "body", "check", "after", "out"]),
        (LOOP, "after", ["after", "out"]),
        (LOOP, "side", ["side", "out"]),
        (NESTED, "b2", ["h1", "h2", "b2", "c2", "c1", "end"]),  # the outermost loop holding it
        (INTO_LOOP, "p", ["h", "p", "u", "check", "end"]),
        (MAP, "each", ["each", "out"]),  # a map node reruns every item
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_which_nodes_rerun(document: Doc, picked: str, reruns: list[str]) -> None:
    workflow = load_workflow(document)
    order = [n["id"] for n in document["nodes"]]
    assert rerun_nodes(workflow, picked) == sorted(reruns, key=order.index)


def _run(document: Doc, replay: Any = None) -> Any:
    return asyncio.run(execute(load_workflow(document), {"n": 10}, llm=OfflineChatModel(), replay=replay))


def _fork(document: Doc, node: str, outputs: dict[str, Any] | None = None) -> tuple[Any, Any]:
    source = _run(document)
    workflow = load_workflow(document)
    replay = fork_replay(
        workflow.plan, source.events, ForkRequest(node, outputs), {"run_id": source.run_id, "node": node}
    )
    return source, _run(document, replay)


def _by_type(result: Any, kind: str) -> list[str]:
    return [e.node_id for e in result.events if e.type == kind]


@pytest.mark.parametrize(
    ("document", "picked", "pins", "result", "ran", "skipped"),
    [
        # the condition the picked node does not feed keeps its decision, even with its input pinned:
        # the picked node, skipped in the source run, is skipped again; what follows it reruns
        (BRANCHY, "big", {"total": 500}, {"answer": "small 20"}, ["done"], ["big"]),
        # a pin reaches the rerun node's template
        (BRANCHY, "done", {"small": "pinned"}, {"answer": "pinned"}, ["done"], ["big"]),
        # a condition that reruns decides again from the pinned value: the branch skipped before now runs
        (BRANCHY, "is_big", {"total": 500}, {"answer": "big 500"}, ["is_big", "big", "done"], ["small"]),
        # the whole loop runs again, every iteration; the side branch is reused
        (LOOP, "body", {"side": "S"}, {"out": "20 S"}, ["h", "body", "check"] * 3 + ["after", "out"], []),
    ],
)
def test_a_fork_reuses_reruns_and_skips_as_the_rule_says(
    document: Doc, picked: str, pins: dict[str, Any], result: dict[str, Any], ran: list[str], skipped: list[str]
) -> None:
    source, fork = _fork(document, picked, pins)
    assert source.status == fork.status == "completed"
    assert fork.result == result
    started = [e for e in fork.events if e.type == "node.started" and not e.data.get("reused")]
    assert [e.node_id for e in started] == ran
    assert _by_type(fork, "node.skipped") == skipped
    first = fork.events[0]
    assert first.type == "run.started" and first.data["forked_from"] == {"run_id": source.run_id, "node": picked}
    reused = [e for e in fork.events if e.type == "node.completed" and e.data.get("reused")]
    assert {e.node_id for e in reused}.isdisjoint(ran)
    for name, value in pins.items():
        assert [e.data["output"] for e in reused if e.node_id == name] == [value]
    assert [e.seq for e in fork.events] == list(range(1, len(fork.events) + 1))


@pytest.mark.parametrize(
    ("picked", "pins", "messages"),
    [
        ("nope", {}, ["node 'nope': no such node in this workflow version"]),
        ("total", {"big": 1, "ghost": 2}, ["output 'big': node 'big' runs again", "output 'ghost': no node 'ghost'"]),
        ("done", {"big": "x"}, ["output 'big': node 'big' did not complete in the source run"]),
        ("big", {"total": float("nan")}, []),  # NaN is made null like every value the engine records
    ],
)
def test_bad_requests_list_every_problem(picked: str, pins: dict[str, Any], messages: list[str]) -> None:
    source = _run(BRANCHY)
    plan = load_workflow(BRANCHY).plan
    if not messages:
        fork_replay(plan, source.events, ForkRequest(picked, pins), {})
        return
    with pytest.raises(ForkInvalid) as caught:
        fork_replay(plan, source.events, ForkRequest(picked, pins), {})
    shown = [str(p) for p in caught.value.problems]
    assert len(shown) == len(messages)
    for text, expected in zip(sorted(shown), sorted(messages), strict=True):
        assert text.startswith(expected), shown


def test_the_rows_record_keeps_the_pinned_values_and_gives_back_the_request_and_the_events_record() -> None:
    """What a queue worker reads from ``runs.forked_from`` to build the same replay as local mode."""
    forked: Any = {"run_id": "r" * 32, "node": "c", "config": {"prompt": "p"}, "outputs": ["a", "b"]}
    record = fork_record(forked, {"b": {"text": "B"}, "a": float("nan")})
    assert record == {**forked, "pins": {"b": {"text": "B"}, "a": None}}  # plain JSON: NaN as null
    request, event_record = request_of(record)
    assert event_record == forked and "pins" not in event_record
    assert request == ForkRequest(node="c", outputs={"b": {"text": "B"}, "a": None}, config={"prompt": "p"})
    bare = {"run_id": "r" * 32, "node": "c"}
    assert fork_record(bare, None) == bare and request_of(bare) == (ForkRequest("c", {}, None), bare)
