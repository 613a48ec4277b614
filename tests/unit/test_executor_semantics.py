"""Executor semantics, pinned to docs/workflow-format.md ("Control flow",
"Values and templates", "Events") and to the loop rules in engine/plan.py.

Table-driven: each case is a small workflow built with the helpers below and the
expected result, node order, skipped set or status. Every run also goes through
``_check_stream``, which asserts the event-stream invariants of the spec (seq from
1 without gaps, run.started first, exactly one terminal event and it is last, the
exact wire keys, JSON-serialisable), so every test here also tests those.

Timing tests use async test tools (``sem_*``) that sleep and record how many of
them run at once, which finished first and which saw ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import json
import time
from itertools import pairwise
from typing import Any

import pytest

import engine
from engine import Event, InputsInvalid, RunResult, run_workflow
from tools import ToolError, tool

Doc = dict[str, Any]


# ----------------------------------------------------------------------------- test tools


class _State:
    """What the sem_* tools saw; reset before every test."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.active = 0
        self.max_active = 0
        self.calls: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.flaky: dict[str, int] = {}


S = _State()


async def sem_sleep(ms: float = 0, value: Any = None, tag: str = "") -> Any:
    """Sleep ``ms`` milliseconds, then return ``value``; tracks concurrency and cancellation."""
    S.active += 1
    S.max_active = max(S.max_active, S.active)
    S.calls.append(tag)
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        S.cancelled.append(tag)
        raise
    finally:
        S.active -= 1
    S.finished.append(tag)
    return value


async def sem_fail(message: str = "boom", ms: float = 0) -> Any:
    """Wait ``ms`` milliseconds, then fail with ``message``."""
    if ms:
        await asyncio.sleep(ms / 1000)
    raise ToolError(message)


async def sem_flaky(key: str, fails: int) -> str:
    """Fail the first ``fails`` calls for ``key``, then succeed."""
    n = S.flaky.get(key, 0) + 1
    S.flaky[key] = n
    if n <= fails:
        raise ToolError(f"flaky failure {n}")
    return f"ok after {n}"


async def sem_maybe_fail(ms: float = 0, fail: bool = False, tag: str = "") -> Any:
    """Sleep ``ms`` milliseconds (tracked like sem_sleep), then fail if ``fail``."""
    await sem_sleep(ms, None, tag)
    if fail:
        raise ToolError(f"item {tag} failed on purpose")
    return tag


async def sem_echo(value: Any = None) -> Any:
    """Return ``value`` unchanged."""
    return value


_TOOLS = (sem_sleep, sem_fail, sem_flaky, sem_maybe_fail, sem_echo)


def _register() -> None:
    for fn in _TOOLS:
        tool(name=fn.__name__, replace=True)(fn)


_register()


@pytest.fixture(autouse=True)
def _fresh_tools() -> None:
    _register()  # in case another test swapped the default registry meanwhile
    S.reset()


# ----------------------------------------------------------------------------- builders


def wf(nodes: list[Doc], edges: list[str | Doc], *, inputs: Doc | None = None, settings: Doc | None = None,
       name: str = "semantics") -> Doc:
    """A workflow document; edges are ``"a>b"`` or ``"cond>b:when"`` shorthands or dicts."""
    doc: Doc = {"format": "workflow/v1", "name": name, "nodes": nodes, "edges": [_edge(e) for e in edges]}
    if inputs is not None:
        doc["inputs"] = inputs
    if settings is not None:
        doc["settings"] = settings
    return doc


def _edge(e: str | Doc) -> Doc:
    if isinstance(e, dict):
        return e
    source, rest = e.split(">", 1)
    if ":" in rest:
        target, when = rest.split(":", 1)
        return {"source": source, "target": target, "when": when}
    return {"source": source, "target": rest}


IN: Doc = {"id": "in", "type": "input"}


def T(node_id: str, expression: str, **extra: Any) -> Doc:
    return {"id": node_id, "type": "transform", "config": {"expression": expression}, **extra}


def TT(node_id: str, template: str, **extra: Any) -> Doc:
    return {"id": node_id, "type": "transform", "config": {"template": template}, **extra}


def C(node_id: str, expression: str) -> Doc:
    return {"id": node_id, "type": "condition", "config": {"expression": expression}}


def OUT(node_id: str, value: Any, name: str | None = None) -> Doc:
    config: Doc = {"value": value}
    if name is not None:
        config["name"] = name
    return {"id": node_id, "type": "output", "config": config}


def TOOL(node_id: str, tool_name: str, args: Doc | None = None, **extra: Any) -> Doc:
    return {"id": node_id, "type": "tool", "config": {"tool": tool_name, "args": args or {}}, **extra}


def SLEEP(node_id: str, ms: float, value: Any = None, **extra: Any) -> Doc:
    return TOOL(node_id, "sem_sleep", {"ms": ms, "value": node_id if value is None else value, "tag": node_id}, **extra)


def MAP(node_id: str, items: str, inner: Doc, concurrency: int | None = None) -> Doc:
    config: Doc = {"items": items, "node": inner}
    if concurrency is not None:
        config["concurrency"] = concurrency
    return {"id": node_id, "type": "map", "config": config}


# ----------------------------------------------------------------------------- running & reading


async def run(doc: Doc, inputs: Doc | None = None, **kw: Any) -> RunResult:
    """Run ``doc``; check the stream invariants and that on_event saw the same events live."""
    seen: list[Event] = []

    def sink(ev: Event) -> None:
        seen.append(ev)
        assert ev.seq == len(seen), "on_event must get events in seq order as they happen"

    result = await run_workflow(doc, inputs, on_event=sink, **kw)
    assert [e.to_dict() for e in seen] == [e.to_dict() for e in result.events]
    _check_stream(result)
    return result


_WIRE_KEYS = {"seq", "run_id", "ts", "type", "node_id", "data"}
_TERMINAL = {"run.completed", "run.failed", "run.cancelled"}


def _check_stream(result: RunResult) -> None:
    events = result.events
    assert events, "a run emits at least run.started and a terminal event"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run.started" and events[0].node_id is None
    terminal = [e for e in events if e.type in _TERMINAL]
    assert len(terminal) == 1 and terminal[0] is events[-1], [e.type for e in terminal]
    status = {"run.completed": "completed", "run.failed": "failed", "run.cancelled": "cancelled"}
    assert result.status == status[events[-1].type]
    run_ids = {e.run_id for e in events}
    assert run_ids == {result.run_id}
    ts = [e.ts for e in events]
    assert ts == sorted(ts), "timestamps never go back"
    for e in events:
        d = e.to_dict()
        assert set(d) == _WIRE_KEYS
        assert isinstance(d["seq"], int) and isinstance(d["ts"], float) and isinstance(d["run_id"], str)
        assert isinstance(d["data"], dict)
        assert e.type in engine.EVENT_TYPES
        json.loads(json.dumps(d))  # every event serialises (no NaN tricks needed here)
        if e.type.startswith("node."):
            assert isinstance(e.node_id, str)
        if e.type.startswith("run."):
            assert e.node_id is None
        if e.type == "node.started":
            assert isinstance(e.data["iteration"], int) and e.data["iteration"] >= 0
        if e.type == "node.completed":
            assert "output" in e.data
            assert isinstance(e.data["duration_ms"], (int, float)) and e.data["duration_ms"] >= 0
        if e.type == "node.failed":
            assert isinstance(e.data["error"], str) and e.data["error"]
    if result.status == "completed":
        assert events[-1].data["result"] == result.result
    if result.status == "failed":
        assert events[-1].data["error"] == result.error
        assert events[-1].data["node_id"] == result.node_id


def started(r: RunResult) -> list[str]:
    return [e.node_id for e in r.events if e.type == "node.started"]  # type: ignore[misc]


def completed(r: RunResult) -> list[str]:
    return [e.node_id for e in r.events if e.type == "node.completed"]  # type: ignore[misc]


def skipped(r: RunResult) -> list[str]:
    return [e.node_id for e in r.events if e.type == "node.skipped"]  # type: ignore[misc]


def failed_nodes(r: RunResult) -> list[str]:
    return [e.node_id for e in r.events if e.type == "node.failed"]  # type: ignore[misc]


def outputs(r: RunResult) -> dict[str, Any]:
    """node id -> its latest output."""
    return {e.node_id: e.data["output"] for e in r.events if e.type == "node.completed"}  # type: ignore[misc]


def iterations(r: RunResult, node_id: str) -> list[int]:
    return [e.data["iteration"] for e in r.events if e.type == "node.started" and e.node_id == node_id]


def pos(r: RunResult, type_: str, node_id: str, nth: int = 0) -> int:
    """Index in the event list of the nth event of that type for that node."""
    hits = [i for i, e in enumerate(r.events) if e.type == type_ and e.node_id == node_id]
    assert len(hits) > nth, f"no {type_} #{nth} for {node_id}"
    return hits[nth]


# ============================================================================= sequential chains

CHAINS = [
    pytest.param(
        [IN, T("a", "inputs.x + 1"), T("b", "nodes.a.output * 2"), OUT("out", "{{ nodes.b.output }}")],
        ["in>a", "a>b", "b>out"],
        {"out": 10},
        ["in", "a", "b", "out"],
        id="numbers",
    ),
    pytest.param(
        [IN, TT("a", "{{ inputs.x }}-a"), TT("b", "{{ nodes.a.output }}-b"), OUT("out", "[{{ nodes.b.output }}]")],
        ["in>a", "a>b", "b>out"],
        {"out": "[4-a-b]"},
        ["in", "a", "b", "out"],
        id="strings",
    ),
    pytest.param(  # document order is the reverse of graph order: the graph decides
        [OUT("out", "{{ nodes.b.output }}"), T("b", "nodes.a.output * 2"), T("a", "inputs.x + 1"), IN],
        ["b>out", "a>b", "in>a"],
        {"out": 10},
        ["in", "a", "b", "out"],
        id="reverse-document-order",
    ),
    pytest.param(
        [IN, SLEEP("a", 10, "A"), SLEEP("b", 10, "B"), T("c", "[nodes.a.output, nodes.b.output]"),
         OUT("out", "{{ nodes.c.output }}")],
        ["in>a", "a>b", "b>c", "c>out"],
        {"out": ["A", "B"]},
        ["in", "a", "b", "c", "out"],
        id="async-tools",
    ),
]


@pytest.mark.parametrize("nodes, edges, expected, order", CHAINS)
async def test_sequential_chain(nodes: list[Doc], edges: list[str], expected: Doc, order: list[str]) -> None:
    r = await run(wf(nodes, edges, inputs={"x": {"type": "integer", "default": 4}}))
    assert r.status == "completed", r.error
    assert r.result == expected
    assert started(r) == order
    assert completed(r) == order
    assert skipped(r) == []
    for a, b in pairwise(order):  # each starts only after its predecessor completed
        assert pos(r, "node.completed", a) < pos(r, "node.started", b)


# ============================================================================= condition branches

BRANCHES = [
    # expression, the `when` of each outgoing edge (edge i goes to node b<i>), indices expected taken
    pytest.param("7 > 5", ["true", "false"], {0}, id="bool-true"),
    pytest.param("3 > 5", ["true", "false"], {1}, id="bool-false"),
    pytest.param("true", ["false", "true", "default"], {1}, id="literal-true-not-default"),
    pytest.param("false", ["true", "default"], {1}, id="false-unmatched-default"),
    pytest.param("7 > 5", ["false", "default"], {1}, id="true-unmatched-default"),
    pytest.param("'true'", ["true", "false"], {0}, id="string-true-as-string"),
    pytest.param("'red'", ["red", "blue"], {0}, id="string"),
    pytest.param("'blue'", ["red", "blue", "default"], {1}, id="string-not-default"),
    pytest.param("'green'", ["red", "blue", "default"], {2}, id="string-default"),
    pytest.param("'green'", ["red", "blue"], set(), id="no-match-no-default"),
    pytest.param("'Red'", ["red", "default"], {1}, id="case-sensitive"),
    pytest.param("2", ["1", "2", "default"], {1}, id="int-as-string"),
    pytest.param("1 + 1", ["2", "default"], {0}, id="computed-int"),
    pytest.param("1.5", ["1.5", "1", "default"], {0}, id="float-as-string"),
    pytest.param("7", ["1", "2"], set(), id="int-no-match"),
    pytest.param("'x'", ["x", "x", "y", "default"], {0, 1}, id="two-edges-same-when"),
    pytest.param("'default'", ["a", "default"], {1}, id="value-default"),
]


@pytest.mark.parametrize("expression, whens, taken", BRANCHES)
async def test_condition_branches(expression: str, whens: list[str], taken: set[int]) -> None:
    nodes = [IN, C("c", expression)]
    edges = ["in>c"]
    for i, when in enumerate(whens):
        nodes += [T(f"b{i}", str(i)), OUT(f"o{i}", f"{{{{ nodes.b{i}.output }}}}")]
        edges += [f"c>b{i}:{when}", f"b{i}>o{i}"]
    r = await run(wf(nodes, edges))
    assert r.status == "completed", r.error
    assert r.result == {f"o{i}": i for i in sorted(taken)}
    ran = {f"b{i}" for i in taken} | {f"o{i}" for i in taken}
    not_taken = {f"b{i}" for i in range(len(whens)) if i not in taken}
    not_taken |= {f"o{i}" for i in range(len(whens)) if i not in taken}
    assert set(started(r)) == {"in", "c"} | ran
    assert sorted(skipped(r)) == sorted(not_taken), "each untaken node is skipped exactly once"


def _bool_when_doc(when_true: Any, when_false: Any) -> Doc:
    return wf(
        [IN, C("c", "inputs.n > 2"), OUT("yes", "yes"), OUT("no", "no")],
        ["in>c", {"source": "c", "target": "yes", "when": when_true},
         {"source": "c", "target": "no", "when": when_false}],
        inputs={"n": {"type": "integer"}},
    )


async def test_condition_string_boolean_when() -> None:
    doc = _bool_when_doc("true", "false")
    assert (await run(doc, {"n": 3})).result == {"yes": "yes"}
    assert (await run(doc, {"n": 1})).result == {"no": "no"}


async def test_condition_json_boolean_when() -> None:
    """Either accepted as "true"/"false" (what the validator intends) or rejected as WorkflowInvalid."""
    doc = _bool_when_doc(True, False)
    try:
        r = await run(doc, {"n": 3})
    except engine.WorkflowInvalid as exc:
        assert "when" in str(exc)
        return
    assert r.result == {"yes": "yes"}
    assert (await run(doc, {"n": 1})).result == {"no": "no"}


# ============================================================================= skips

async def test_skip_propagates_through_several_levels() -> None:
    doc = wf(
        [IN, C("c", "false"), T("a1", "1"), T("a2", "2"), T("a3", "3"), OUT("oa", "{{ nodes.a3.output }}"),
         T("z", "'z'"), OUT("oz", "{{ nodes.z.output }}")],
        ["in>c", "c>a1:true", "a1>a2", "a2>a3", "a3>oa", "c>z:false", "z>oz"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"oz": "z"}
    assert sorted(skipped(r)) == ["a1", "a2", "a3", "oa"]
    assert set(started(r)) == {"in", "c", "z", "oz"}
    # skips are reported in graph order
    assert [n for n in skipped(r)] == ["a1", "a2", "a3", "oa"]


@pytest.mark.parametrize("flag, expected", [("true", "A"), ("false", "B")])
async def test_merge_after_branch_uses_null_of_skipped_node(flag: str, expected: str) -> None:
    doc = wf(
        [IN, C("c", flag), T("a", "'A'"), T("b", "'B'"),
         TT("m", "{{ nodes.a.output or nodes.b.output }}"),
         OUT("out", {"merged": "{{ nodes.m.output }}", "a_null": "{{ nodes.a.output is none }}",
                   "b_null": "{{ nodes.b.output is none }}"})],
        ["in>c", "c>a:true", "c>b:false", "a>m", "b>m", "m>out"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": {"merged": expected, "a_null": expected == "B", "b_null": expected == "A"}}
    assert started(r).count("m") == 1
    assert skipped(r) == (["b"] if expected == "A" else ["a"])


async def test_join_with_no_taken_edge_is_skipped_and_run_completes() -> None:
    doc = wf(
        [IN, C("c", "'q'"), T("a", "1"), T("b", "2"), T("m", "3"), OUT("out", "{{ nodes.m.output }}"),
         OUT("other", "ok")],
        ["in>c", "c>a:x", "c>b:y", "a>m", "b>m", "m>out", "in>other"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"other": "ok"}
    assert sorted(skipped(r)) == ["a", "b", "m", "out"]
    assert skipped(r).count("m") == 1


async def test_skip_propagates_through_a_loop() -> None:
    doc = wf(
        [IN, C("c0", "false"), T("h", "iteration"), C("lc", "iteration < 2"), OUT("after", "{{ nodes.h.output }}"),
         OUT("alt", "alt")],
        ["in>c0", "c0>h:true", "h>lc", "lc>h:true", "lc>after:false", "c0>alt:false"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"alt": "alt"}
    assert sorted(skipped(r)) == ["after", "h", "lc"]
    assert "h" not in started(r)


# ============================================================================= parallel fan-out

@pytest.mark.parametrize("n", [3, 5])
async def test_parallel_branches_overlap(n: int) -> None:
    ids = [f"p{i}" for i in range(n)]
    doc = wf(
        [IN, *[SLEEP(p, 200, i) for i, p in enumerate(ids)],
         T("j", "[" + ", ".join(f"nodes.{p}.output" for p in ids) + "]"), OUT("out", "{{ nodes.j.output }}")],
        [f"in>{p}" for p in ids] + [f"{p}>j" for p in ids] + ["j>out"],
    )
    t0 = time.perf_counter()
    r = await run(doc)
    elapsed = time.perf_counter() - t0
    assert r.status == "completed", r.error
    assert r.result == {"out": list(range(n))}
    assert elapsed < 0.35, f"{n} x 0.2 s branches took {elapsed:.3f} s: they did not run concurrently"
    assert S.max_active == n
    last_start = max(pos(r, "node.started", p) for p in ids)
    first_done = min(pos(r, "node.completed", p) for p in ids)
    assert last_start < first_done, "every branch starts before any finishes"
    assert started(r).count("j") == 1
    assert pos(r, "node.started", "j") > max(pos(r, "node.completed", p) for p in ids)


# ============================================================================= joins

@pytest.mark.parametrize("slow_first", [True, False])
async def test_join_waits_for_slow_and_fast_branch(slow_first: bool) -> None:
    branches = ["in>slow", "in>fast"] if slow_first else ["in>fast", "in>slow"]
    doc = wf(
        [IN, SLEEP("slow", 150, "S"), SLEEP("fast", 5, "F"), T("j", "[nodes.slow.output, nodes.fast.output]"),
         OUT("out", "{{ nodes.j.output }}")],
        branches + ["slow>j", "fast>j", "j>out"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": ["S", "F"]}
    assert started(r).count("j") == 1 and completed(r).count("j") == 1
    assert pos(r, "node.started", "j") > pos(r, "node.completed", "slow")
    assert pos(r, "node.started", "j") > pos(r, "node.completed", "fast")
    assert pos(r, "node.completed", "fast") < pos(r, "node.completed", "slow")


async def test_join_waits_for_predecessors_at_different_depths() -> None:
    doc = wf(
        [IN, T("a", "1"), T("b", "nodes.a.output + 1"), SLEEP("c", 20, 3),
         T("j", "[nodes.in.output.x, nodes.c.output]"), OUT("out", "{{ nodes.j.output }}")],
        ["in>a", "a>b", "b>c", "c>j", "in>j", "j>out"],
        inputs={"x": {"type": "integer", "default": 0}},
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": [0, 3]}
    assert started(r).count("j") == 1
    assert pos(r, "node.started", "j") > pos(r, "node.completed", "c")


async def test_join_waits_for_slow_taken_branch_and_skipped_branch() -> None:
    doc = wf(
        [IN, C("c", "true"), SLEEP("slow", 100, "S"), T("nb", "'never'"),
         TT("j", "{{ nodes.slow.output or nodes.nb.output }}"), OUT("out", "{{ nodes.j.output }}")],
        ["in>c", "c>slow:true", "c>nb:false", "slow>j", "nb>j", "j>out"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": "S"}
    assert started(r).count("j") == 1
    assert pos(r, "node.started", "j") > pos(r, "node.completed", "slow")
    assert pos(r, "node.started", "j") > pos(r, "node.skipped", "nb")


# ============================================================================= loops

@pytest.mark.parametrize("n", [0, 1, 3, 8])
async def test_counting_loop(n: int) -> None:
    """body sees iteration 0..n; the exit path and a node fed from inside the body run once, after."""
    doc = wf(
        [
            IN,
            T("body", "iteration"),
            C("check", f"nodes.body.output < {n}"),
            OUT("after", "{{ nodes.body.output }}"),
            T("side", "nodes.body.output * 10"),
            OUT("side_out", "{{ nodes.side.output }}"),
        ],
        ["in>body", "body>check", "check>body:true", "check>after:false", "body>side", "side>side_out"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert iterations(r, "body") == list(range(n + 1))
    assert iterations(r, "check") == list(range(n + 1))
    assert [e.data["output"] for e in r.events if e.type == "node.completed" and e.node_id == "body"] == list(
        range(n + 1)
    )
    assert started(r).count("after") == 1
    assert started(r).count("side") == 1, "a node fed from inside the loop body runs once, after the loop"
    assert r.result == {"after": n, "side_out": n * 10}
    last_check = pos(r, "node.completed", "check", n)
    assert pos(r, "node.started", "after") > last_check
    assert pos(r, "node.started", "side") > last_check, "nodes after a loop wait until it exits"
    assert skipped(r) == []


async def test_loop_body_sees_latest_output_of_previous_iteration() -> None:
    doc = wf(
        [
            IN,
            T("acc", "nodes.acc.output + [iteration * 10] if iteration > 0 else [0]"),
            C("check", "nodes.acc.output | length < 4"),
            OUT("out", "{{ nodes.acc.output }}"),
        ],
        ["in>acc", "acc>check", "check>acc:true", "check>out:false"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": [0, 10, 20, 30]}


@pytest.mark.parametrize("limit", [1, 3])
async def test_max_iterations_guard(limit: int) -> None:
    doc = wf(
        [IN, T("body", "iteration"), C("check", "true"), OUT("after", "never")],
        ["in>body", "body>check", "check>body:true", "check>after:false"],
        settings={"max_iterations": limit},
    )
    t0 = time.perf_counter()
    r = await run(doc)
    assert time.perf_counter() - t0 < 2
    assert r.status == "failed"
    assert r.node_id == "body"
    last = r.events[-1]
    assert last.type == "run.failed" and last.data["node_id"] == "body"
    assert "body" in r.error and str(limit) in r.error and "max_iterations" in r.error
    assert started(r).count("body") == limit, "the refused execution emits no node.started"
    assert started(r).count("check") == limit
    assert "after" not in started(r)
    assert iterations(r, "body") == list(range(limit))


async def test_max_iterations_default_is_10() -> None:
    doc = wf(
        [IN, T("body", "iteration"), C("check", "true"), OUT("after", "never")],
        ["in>body", "body>check", "check>body:true", "check>after:false"],
    )
    r = await run(doc)
    assert r.status == "failed" and r.node_id == "body"
    assert started(r).count("body") == 10
    assert "10" in r.error


async def test_nested_loop_inner_iteration_resets() -> None:
    doc = wf(
        [
            IN,
            T("o_body", "iteration"),
            T("i_body", "iteration"),
            C("i_check", "iteration < 1"),
            C("o_check", "iteration < 2"),
            OUT("done", "{{ [nodes.o_body.output, nodes.i_body.output] }}"),
        ],
        [
            "in>o_body",
            "o_body>i_body",
            "i_body>i_check",
            "i_check>i_body:true",
            "i_check>o_check:false",
            "o_check>o_body:true",
            "o_check>done:false",
        ],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert iterations(r, "o_body") == [0, 1, 2]
    assert iterations(r, "o_check") == [0, 1, 2]
    assert iterations(r, "i_body") == [0, 1, 0, 1, 0, 1]
    assert iterations(r, "i_check") == [0, 1, 0, 1, 0, 1]
    assert started(r).count("done") == 1
    assert r.result == {"done": [2, 1]}
    # o_check runs only after its inner loop exits, once per outer iteration
    for k in range(3):
        assert pos(r, "node.started", "o_check", k) > pos(r, "node.completed", "i_check", 2 * k + 1)


async def test_max_iterations_counts_runs_across_outer_iterations() -> None:
    """The bound is per node per run: an inner body re-entered by an outer loop keeps counting."""
    doc = wf(
        [
            IN,
            T("o_body", "iteration"),
            T("i_body", "iteration"),
            C("i_check", "iteration < 1"),
            C("o_check", "iteration < 2"),
            OUT("done", "{{ nodes.o_body.output }}"),
        ],
        [
            "in>o_body",
            "o_body>i_body",
            "i_body>i_check",
            "i_check>i_body:true",
            "i_check>o_check:false",
            "o_check>o_body:true",
            "o_check>done:false",
        ],
        settings={"max_iterations": 5},
    )
    r = await run(doc)
    assert r.status == "failed" and r.node_id == "i_body"
    assert started(r).count("i_body") == 5
    assert "i_body" in r.error and "5" in r.error


async def test_loop_with_parallel_body_and_join() -> None:
    doc = wf(
        [
            IN,
            T("h", "iteration"),
            SLEEP("p1", 5, 1),
            SLEEP("p2", 20, 2),
            C("j", "iteration < 2"),
            OUT("out", "{{ [nodes.h.output, nodes.p1.output, nodes.p2.output] }}"),
        ],
        ["in>h", "h>p1", "h>p2", "p1>j", "p2>j", "j>h:true", "j>out:false"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    for node_id in ("h", "p1", "p2", "j"):
        assert iterations(r, node_id) == [0, 1, 2], node_id
    for k in range(3):
        assert pos(r, "node.started", "j", k) > pos(r, "node.completed", "p2", k)
        assert pos(r, "node.started", "j", k) > pos(r, "node.completed", "p1", k)
    assert r.result == {"out": [2, 1, 2]}
    assert started(r).count("out") == 1


async def test_loop_exit_join_with_outside_predecessor() -> None:
    doc = wf(
        [
            IN,
            T("body", "iteration"),
            C("check", "iteration < 2"),
            SLEEP("other", 50, "o"),
            T("j", "[nodes.body.output, nodes.other.output]"),
            OUT("out", "{{ nodes.j.output }}"),
        ],
        ["in>body", "body>check", "check>body:true", "check>j:false", "in>other", "other>j", "j>out"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": [2, "o"]}
    assert started(r).count("j") == 1
    assert pos(r, "node.started", "j") > pos(r, "node.completed", "other")
    assert pos(r, "node.started", "j") > pos(r, "node.completed", "check", 2)


async def test_while_loop_closed_by_a_non_condition_node() -> None:
    """in -> c -true-> b -> c (back-edge from b): when c says false, b is skipped and the loop exits."""
    doc = wf(
        [IN, C("c", "iteration < 2"), T("b", "iteration"), OUT("out", "{{ [nodes.b.output, nodes.c.output] }}")],
        ["in>c", "c>b:true", "b>c", "c>out:false"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert iterations(r, "c") == [0, 1, 2]
    assert iterations(r, "b") == [0, 1]
    assert r.result == {"out": [None, False]}, "b was skipped in the last pass, so its output is null"
    assert started(r).count("out") == 1


async def test_branch_inside_loop_body_resets_each_iteration() -> None:
    doc = wf(
        [
            IN,
            T("h", "iteration"),
            C("even", "iteration is even"),
            T("ev", "'e' ~ iteration"),
            T("od", "'o' ~ iteration"),
            TT("j", "{{ nodes.ev.output or nodes.od.output }}"),
            C("lc", "iteration < 3"),
            OUT("out", "{{ nodes.j.output }}"),
        ],
        ["in>h", "h>even", "even>ev:true", "even>od:false", "ev>j", "od>j", "j>lc", "lc>h:true", "lc>out:false"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert [e.data["output"] for e in r.events if e.type == "node.completed" and e.node_id == "j"] == [
        "e0",
        "o1",
        "e2",
        "o3",
    ]
    assert skipped(r) == ["od", "ev", "od", "ev"]
    assert iterations(r, "j") == [0, 1, 2, 3]
    assert r.result == {"out": "o3"}


@pytest.mark.parametrize("taken_in, runs", [(2, True), (0, False), (1, False)])
async def test_edge_leaving_loop_delivers_last_iteration_state(taken_in: int, runs: bool) -> None:
    """engine/plan.py: an edge from a body node to a node outside is delivered at exit with the last
    iteration's state (here: the body branch `side` is taken only in iteration ``taken_in`` of 0..2)."""
    doc = wf(
        [
            IN,
            T("h", "iteration"),
            C("pick", f"iteration == {taken_in}"),
            T("side", "'side' ~ iteration"),
            C("lc", "iteration < 2"),
            TT("outside", "{{ nodes.side.output }}"),
            OUT("out", "{{ nodes.outside.output }}"),
        ],
        ["in>h", "h>pick", "pick>side:true", "pick>lc:default", "side>lc", "lc>h:true", "side>outside", "outside>out"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert iterations(r, "h") == [0, 1, 2]
    if runs:
        assert started(r).count("outside") == 1
        assert pos(r, "node.started", "outside") > pos(r, "node.completed", "lc", 2)
        assert r.result == {"out": "side2"}
    else:
        assert "outside" not in started(r)
        assert skipped(r).count("outside") == 1 and r.result == {}


# ============================================================================= map


async def test_map_keeps_item_order_when_later_items_finish_first() -> None:
    inner = {
        "type": "tool",
        "config": {
            "tool": "sem_sleep",
            "args": {"ms": "{{ (5 - index) * 30 }}", "value": "{{ item }}", "tag": "i{{ index }}"},
        },
    }
    doc = wf([IN, MAP("m", "['a', 'b', 'c', 'd', 'e']", inner), OUT("out", "{{ nodes.m.output }}")], ["in>m", "m>out"])
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": ["a", "b", "c", "d", "e"]}
    assert S.finished == ["i4", "i3", "i2", "i1", "i0"], "the test needs later items to finish first"


@pytest.mark.parametrize("concurrency, n, rounds", [(2, 6, 3), (3, 6, 2), (None, 10, 2)])
async def test_map_concurrency_bound(concurrency: int | None, n: int, rounds: int) -> None:
    inner = {"type": "tool", "config": {"tool": "sem_sleep", "args": {"ms": 100, "value": "{{ index }}"}}}
    doc = wf(
        [IN, MAP("m", f"range({n}) | list", inner, concurrency), OUT("out", "{{ nodes.m.output }}")], ["in>m", "m>out"]
    )
    t0 = time.perf_counter()
    r = await run(doc)
    elapsed = time.perf_counter() - t0
    assert r.status == "completed", r.error
    assert r.result == {"out": list(range(n))}
    assert S.max_active == (concurrency or 8), "the concurrency bound is reached and never exceeded"
    assert rounds * 0.1 - 0.02 <= elapsed < rounds * 0.1 + 0.15, f"{elapsed:.3f} s for {rounds} rounds"


MAP_VALUES = [
    pytest.param("[5]", "item * 2", [10], id="one-item"),
    pytest.param("[[1, 2]]", "item", [[1, 2]], id="one-item-list-not-flattened"),
    pytest.param("[{'k': 1}]", "item", [{"k": 1}], id="one-item-object"),
    pytest.param("[[]]", "item", [[]], id="one-empty-list"),
    pytest.param("['only']", "item", ["only"], id="one-string"),
    pytest.param("[]", "item", [], id="empty"),
    pytest.param("inputs.xs", "item", [7], id="one-item-from-input"),
    pytest.param("[3, 1, 2]", "[index, item]", [[0, 3], [1, 1], [2, 2]], id="index-and-item"),
    pytest.param("[none, 0, '']", "item", [None, 0, ""], id="falsy-items"),
]


@pytest.mark.parametrize("items, expression, expected", MAP_VALUES)
async def test_map_values(items: str, expression: str, expected: list[Any]) -> None:
    doc = wf(
        [
            IN,
            MAP("m", items, {"type": "transform", "config": {"expression": expression}}),
            OUT("out", "{{ nodes.m.output }}"),
        ],
        ["in>m", "m>out"],
        inputs={"xs": {"type": "array", "default": [7]}},
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": expected}
    assert outputs(r)["m"] == expected


async def test_map_one_item_through_a_tool() -> None:
    inner = {"type": "tool", "config": {"tool": "sem_echo", "args": {"value": "{{ item }}"}}}
    doc = wf([IN, MAP("m", "[[1, 2, 3]]", inner), OUT("out", "{{ nodes.m.output }}")], ["in>m", "m>out"])
    r = await run(doc)
    assert r.result == {"out": [[1, 2, 3]]}


async def test_map_template_sees_item_and_index() -> None:
    doc = wf(
        [
            IN,
            MAP("m", "inputs.xs", {"type": "transform", "config": {"template": "{{ index }}:{{ item }}"}}),
            OUT("out", "{{ nodes.m.output }}"),
        ],
        ["in>m", "m>out"],
        inputs={"xs": {"type": "array"}},
    )
    r = await run(doc, {"xs": ["a", "b", "c"]})
    assert r.result == {"out": ["0:a", "1:b", "2:c"]}


@pytest.mark.parametrize("items, type_name", [("5", "int"), ("'abc'", "str"), ("{'a': 1}", "dict"), ("none", "None")])
async def test_map_items_not_a_list_fails_the_node(items: str, type_name: str) -> None:
    doc = wf(
        [
            IN,
            MAP("m", items, {"type": "transform", "config": {"expression": "item"}}),
            OUT("out", "{{ nodes.m.output }}"),
        ],
        ["in>m", "m>out"],
    )
    r = await run(doc)
    assert r.status == "failed"
    assert r.node_id == "m"
    assert failed_nodes(r) == ["m"]
    assert "list" in r.error and type_name in r.error and "'m'" in r.error
    assert "out" not in started(r)


async def test_map_item_failure_fails_the_node() -> None:
    inner = {"type": "tool", "config": {"tool": "sem_fail", "args": {"message": "bad item {{ index }}"}}}
    doc = wf([IN, MAP("m", "[1]", inner), OUT("out", "{{ nodes.m.output }}")], ["in>m", "m>out"])
    r = await run(doc)
    assert r.status == "failed" and r.node_id == "m"
    assert "bad item 0" in r.error


async def test_map_item_failure_cancels_other_items() -> None:
    inner = {
        "type": "tool",
        "config": {
            "tool": "sem_maybe_fail",
            "args": {"ms": "{{ 10 if item == 2 else 5000 }}", "fail": "{{ item == 2 }}", "tag": "i{{ index }}"},
        },
    }
    doc = wf([IN, MAP("m", "[0, 1, 2, 3]", inner), OUT("out", "{{ nodes.m.output }}")], ["in>m", "m>out"])
    t0 = time.perf_counter()
    r = await run(doc)
    assert time.perf_counter() - t0 < 1
    assert r.status == "failed" and r.node_id == "m"
    assert "item i2 failed on purpose" in r.error
    assert sorted(S.cancelled) == ["i0", "i1", "i3"]


# ============================================================================= retry and timeouts


@pytest.mark.parametrize(
    "fails, attempts, ok",
    [(0, 1, True), (2, 3, True), (1, 2, True), (3, 3, False), (5, 2, False), (1, 1, False)],
)
async def test_retry(fails: int, attempts: int, ok: bool) -> None:
    node = TOOL("t", "sem_flaky", {"key": "t", "fails": fails}, retry={"attempts": attempts, "backoff_s": 0.01})
    doc = wf([IN, node, OUT("out", "{{ nodes.t.output }}")], ["in>t", "t>out"])
    r = await run(doc)
    calls = [e for e in r.events if e.type == "tool.called" and e.node_id == "t"]
    retry_logs = [e for e in r.events if e.type == "log" and e.node_id == "t"]
    if ok:
        assert r.status == "completed", r.error
        assert r.result == {"out": f"ok after {fails + 1}"}
        assert len(calls) == fails + 1
        assert len(retry_logs) == fails, "one log event per retry"
        assert completed(r).count("t") == 1
        assert failed_nodes(r) == []
    else:
        assert r.status == "failed"
        assert r.node_id == "t"
        assert len(calls) == attempts, "attempts counts every try, the first included"
        assert len(retry_logs) == attempts - 1
        assert failed_nodes(r) == ["t"]
        assert f"flaky failure {attempts}" in r.error
        assert "'t'" in r.error
        assert "out" not in started(r)
    for e in retry_logs:
        assert e.data["level"] in ("warning", "info", "error") and e.data["message"]


async def test_node_timeout_fails_the_node() -> None:
    doc = wf([IN, SLEEP("slow", 3000, timeout_s=0.1), OUT("out", "{{ nodes.slow.output }}")], ["in>slow", "slow>out"])
    t0 = time.perf_counter()
    r = await run(doc)
    assert time.perf_counter() - t0 < 1
    assert r.status == "failed" and r.node_id == "slow"
    assert "timed out" in r.error and "'slow'" in r.error
    node_failed = [e for e in r.events if e.type == "node.failed" and e.node_id == "slow"]
    assert len(node_failed) == 1 and "timed out" in node_failed[0].data["error"]
    assert S.cancelled == ["slow"], "the timed-out tool call is cancelled"


async def test_node_timeout_applies_to_each_attempt() -> None:
    doc = wf(
        [
            IN,
            SLEEP("slow", 3000, timeout_s=0.05, retry={"attempts": 3, "backoff_s": 0.01}),
            OUT("out", "{{ nodes.slow.output }}"),
        ],
        ["in>slow", "slow>out"],
    )
    t0 = time.perf_counter()
    r = await run(doc)
    assert time.perf_counter() - t0 < 1
    assert r.status == "failed" and r.node_id == "slow"
    assert len([e for e in r.events if e.type == "tool.called"]) == 3
    assert "timed out" in r.error


async def test_run_timeout_ends_the_run_quickly() -> None:
    doc = wf(
        [IN, SLEEP("slow", 5000), SLEEP("slow2", 5000), OUT("out", "{{ nodes.slow.output }}")],
        ["in>slow", "in>slow2", "slow>out", "slow2>out"],
        settings={"timeout_s": 0.2},
    )
    t0 = time.perf_counter()
    r = await run(doc)
    elapsed = time.perf_counter() - t0
    assert 0.18 <= elapsed < 1, elapsed
    assert r.status == "failed"
    assert "timed out" in r.error
    assert sorted(S.cancelled) == ["slow", "slow2"]
    assert "slow" not in completed(r) and "out" not in started(r)


# ============================================================================= failure cancels siblings


@pytest.mark.parametrize("fail_first", [True, False])
async def test_failure_cancels_running_siblings(fail_first: bool) -> None:
    fan = ["in>bad", "in>slow", "in>quick"] if fail_first else ["in>slow", "in>quick", "in>bad"]
    doc = wf(
        [
            IN,
            TOOL("bad", "sem_fail", {"message": "kaboom-42", "ms": 20}),
            SLEEP("slow", 5000),
            SLEEP("quick", 1),
            SLEEP("q2", 40),
            SLEEP("q3", 40),
            T("q4", "1"),
            SLEEP("after_slow", 1),
            OUT("out", "{{ nodes.after_slow.output }}"),
        ],
        fan + ["quick>q2", "q2>q3", "q3>q4", "slow>after_slow", "after_slow>out", "bad>out", "q4>out"],
    )
    t0 = time.perf_counter()
    r = await run(doc)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"the run took {elapsed:.3f} s: the 5 s sibling was not cancelled"
    assert r.status == "failed" and r.node_id == "bad"
    assert "kaboom-42" in r.error
    assert "slow" not in completed(r)
    assert "slow" in S.cancelled, "the running sibling's coroutine is cancelled"
    first_failure = pos(r, "node.failed", "bad")
    assert all(e.type != "node.started" for e in r.events[first_failure:]), "nothing new starts after the failure"
    assert all(e.type != "node.completed" for e in r.events[first_failure:])
    assert "q4" not in started(r) and "after_slow" not in started(r) and "out" not in started(r)


async def test_failure_in_sync_node_stops_ready_siblings() -> None:
    doc = wf(
        [IN, T("bad", "nodes.in.output.nope"), SLEEP("s", 100), T("s2", "1"), OUT("out", "{{ nodes.s2.output }}")],
        ["in>bad", "in>s", "s>s2", "s2>out"],
    )
    r = await run(doc)
    assert r.status == "failed" and r.node_id == "bad"
    first_failure = pos(r, "node.failed", "bad")
    assert all(e.type != "node.started" for e in r.events[first_failure:])
    assert "s2" not in started(r)


# ============================================================================= cancellation


@pytest.mark.parametrize("shape", ["chain", "fan-out", "spawned-only"])
async def test_cancel_run_while_a_node_sleeps(shape: str) -> None:
    if shape == "chain":
        doc = wf([IN, T("a", "1"), SLEEP("s1", 5000), OUT("out", "{{ nodes.s1.output }}")], ["in>a", "a>s1", "s1>out"])
        sleepers = ["s1"]
    elif shape == "spawned-only":  # the run's own task has finished its branch and waits for the others
        doc = wf(
            [IN, T("q", "1"), SLEEP("s1", 5000), OUT("out", "{{ nodes.s1.output }}")],
            ["in>q", "in>s1", "s1>out", "q>out"],
        )
        sleepers = ["s1"]
    else:
        doc = wf(
            [IN, SLEEP("s1", 5000), SLEEP("s2", 5000), OUT("out", "{{ nodes.s1.output }}")],
            ["in>s1", "in>s2", "s1>out", "s2>out"],
        )
        sleepers = ["s1", "s2"]
    events: list[Event] = []
    calls = asyncio.Event()

    def sink(ev: Event) -> None:
        events.append(ev)
        if ev.type == "tool.called" and sum(e.type == "tool.called" for e in events) == len(sleepers):
            calls.set()

    t0 = time.perf_counter()
    task = asyncio.create_task(run_workflow(doc, on_event=sink))
    await asyncio.wait_for(calls.wait(), 2)
    await asyncio.sleep(0.05)
    task.cancel()
    r = await asyncio.wait_for(task, 2)  # returns the result rather than raising
    assert time.perf_counter() - t0 < 1
    assert isinstance(r, RunResult)
    _check_stream(r)
    assert r.status == "cancelled"
    assert r.events[-1].type == "run.cancelled"
    assert sorted(S.cancelled) == sleepers, "the sleeping tool saw CancelledError"
    assert not any(e.type == "node.completed" and e.node_id in sleepers for e in r.events)
    assert "out" not in started(r)
    assert [e.to_dict() for e in events] == [e.to_dict() for e in r.events]


# ============================================================================= templates

TEMPLATE_VALUES = [
    pytest.param("{{ inputs.xs }}", [1, 2, 3], id="list-stays-list"),
    pytest.param("{{ inputs.n }}", 3, id="int-stays-int"),
    pytest.param("{{ inputs.n * 1.5 }}", 4.5, id="float"),
    pytest.param("{{ inputs.flag }}", True, id="bool"),
    pytest.param("{{ inputs.obj }}", {"k": "v"}, id="object"),
    pytest.param("{{ inputs.xs[0] }}", 1, id="index-int"),
    pytest.param("{{inputs.n}}", 3, id="no-spaces"),
    pytest.param("n={{ inputs.n }}", "n=3", id="mixed-text"),
    pytest.param("{{ inputs.n }}{{ inputs.n }}", "33", id="two-expressions"),
    pytest.param("{{ inputs.xs }} items", "[1, 2, 3] items", id="list-in-text"),
    pytest.param("plain text", "plain text", id="plain"),
    pytest.param("{{ inputs.s }}", "007", id="numeric-looking-string-stays-string"),
]


@pytest.mark.parametrize("where", ["transform", "output", "tool-arg"])
@pytest.mark.parametrize("template, expected", TEMPLATE_VALUES)
async def test_single_expression_keeps_its_type(where: str, template: str, expected: Any) -> None:
    inputs = {
        "xs": {"type": "array", "default": [1, 2, 3]},
        "n": {"type": "integer", "default": 3},
        "flag": {"type": "boolean", "default": True},
        "obj": {"type": "object", "default": {"k": "v"}},
        "s": {"type": "string", "default": "007"},
    }
    if where == "transform":
        nodes = [IN, TT("v", template), OUT("out", "{{ nodes.v.output }}")]
    elif where == "output":
        nodes = [IN, T("v", "0"), OUT("out", template)]
    else:
        nodes = [IN, TOOL("v", "sem_echo", {"value": template}), OUT("out", "{{ nodes.v.output }}")]
    r = await run(wf(nodes, ["in>v", "v>out"], inputs=inputs))
    assert r.status == "completed", r.error
    got = r.result["out"]
    assert got == expected and type(got) is type(expected), f"{template!r} gave {got!r} ({type(got).__name__})"


async def test_output_value_object_renders_each_string() -> None:
    doc = wf(
        [
            IN,
            OUT(
                "out",
                {
                    "a": "{{ inputs.n }}",
                    "b": ["{{ inputs.xs }}", "x{{ inputs.n }}", 5, None],
                    "c": {"d": "{{ inputs.n > 2 }}"},
                },
            ),
        ],
        ["in>out"],
        inputs={"n": {"type": "integer", "default": 3}, "xs": {"type": "array", "default": [1]}},
    )
    r = await run(doc)
    assert r.result == {"out": {"a": 3, "b": [[1], "x3", 5, None], "c": {"d": True}}}


async def test_items_keys_values_as_input_and_node_names() -> None:
    doc = wf(
        [
            IN,
            T("items", "[inputs.items, inputs.keys, inputs.values]"),
            T("values", "inputs.items | length"),
            TT("keys", "{{ nodes.items.output }}|{{ nodes.values.output }}"),
            OUT(
                "out",
                {
                    "items": "{{ nodes.items.output }}",
                    "values": "{{ nodes.values.output }}",
                    "keys": "{{ nodes.keys.output }}",
                    "get": "{{ inputs.get }}",
                },
            ),
        ],
        ["in>items", "items>values", "values>keys", "keys>out"],
        inputs={
            "items": {"type": "array", "default": [1, 2]},
            "keys": {"type": "string", "default": "k"},
            "values": {"type": "number", "default": 2.5},
            "get": {"type": "string", "default": "g"},
        },
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"out": {"items": [[1, 2], "k", 2.5], "values": 2, "keys": "[[1, 2], 'k', 2.5]|2", "get": "g"}}


UNDEFINED = [
    pytest.param(T("b", "nodes.a.output.missing_key"), "missing_key", id="expression-missing-key"),
    pytest.param(TT("b", "v={{ nodes.a.output.missing_key }}"), "missing_key", id="text-template-missing-key"),
    pytest.param(TT("b", "{{ nodes.a.output.missing_key }}"), "missing_key", id="single-expression-missing-key"),
    pytest.param(T("b", "inputs.obj.nokey"), "nokey", id="input-missing-key"),
    pytest.param(T("b", "nodes.a.output['other']"), "other", id="subscript"),
    pytest.param(C("b", "nodes.a.output.flag_x > 1"), "flag_x", id="condition"),
]


@pytest.mark.parametrize("bad, variable", UNDEFINED)
async def test_undefined_variable_at_run_time_fails_the_node(bad: Doc, variable: str) -> None:
    doc = wf(
        [IN, T("a", "{'x': 1}"), bad, OUT("out", "{{ nodes.b.output }}")],
        ["in>a", "a>b", "b>out"] if bad["type"] != "condition" else ["in>a", "a>b", "b>out:default"],
        inputs={"obj": {"type": "object", "default": {"k": 1}}},
    )
    r = await run(doc)
    assert r.status == "failed"
    assert r.node_id == "b"
    assert "'b'" in r.error and variable in r.error, r.error
    nf = [e for e in r.events if e.type == "node.failed"]
    assert [e.node_id for e in nf] == ["b"] and variable in nf[0].data["error"]
    assert "out" not in started(r)


SANDBOX = [
    pytest.param(T("b", "''.__class__"), id="str-class"),
    pytest.param(T("b", "''.__class__.__mro__[1].__subclasses__()"), id="subclasses"),
    pytest.param(TT("b", "{{ ''.__class__ }}"), id="template-single"),
    pytest.param(TT("b", "x{{ ''.__class__ }}"), id="template-text"),
    pytest.param(T("b", "{'a': inputs.xs}.__class__"), id="dict-class"),  # (inputs.__class__: an unknown input)
    pytest.param(T("b", "inputs.xs.append(4)"), id="mutation"),
    pytest.param(T("b", "range.__globals__"), id="globals"),
]


@pytest.mark.parametrize("bad", SANDBOX)
async def test_sandbox_refuses_attribute_walks(bad: Doc) -> None:
    doc = wf(
        [IN, bad, OUT("out", "{{ nodes.b.output }}")],
        ["in>b", "b>out"],
        inputs={"xs": {"type": "array", "default": [1]}},
    )
    r = await run(doc)
    assert r.status == "failed", f"the sandbox let it through: {r.result!r}"
    assert r.node_id == "b"
    assert "<class" not in r.error
    assert "b" not in completed(r)


# ============================================================================= events

EVENT_RUNS = [
    pytest.param(
        wf(
            [
                IN,
                C("c", "inputs.n > 1"),
                SLEEP("a", 10, "A"),
                T("b", "'B'"),
                MAP("m", "[1, 2, 3]", {"type": "transform", "config": {"expression": "item * iteration"}}),
                T("h", "iteration"),
                C("lc", "iteration < 2"),
                OUT("out", {"a": "{{ nodes.a.output }}", "b": "{{ nodes.b.output }}", "h": "{{ nodes.h.output }}"}),
            ],
            ["in>c", "c>a:true", "c>b:false", "a>m", "b>m", "m>h", "h>lc", "lc>h:true", "lc>out:false"],
            inputs={"n": {"type": "integer", "default": 2}},
        ),
        "completed",
        id="branch-map-loop",
    ),
    pytest.param(
        wf([IN, TOOL("f", "sem_fail", {"message": "x"}), SLEEP("s", 1000)], ["in>f", "in>s"]), "failed", id="failed"
    ),
    pytest.param(wf([IN, OUT("out", "{{ inputs }}")], ["in>out"]), "completed", id="minimal"),
]


@pytest.mark.parametrize("doc, status", EVENT_RUNS)
async def test_event_stream(doc: Doc, status: str) -> None:
    r = await run(doc, run_id="run-fixed-1")  # run() already checks the invariants
    assert r.status == status
    assert r.run_id == "run-fixed-1"
    assert all(e.run_id == "run-fixed-1" for e in r.events)
    assert r.events[0].seq == 1 and r.events[0].type == "run.started"
    assert sum(e.type in _TERMINAL for e in r.events) == 1 and r.events[-1].type in _TERMINAL
    assert all(set(e.to_dict()) == _WIRE_KEYS for e in r.events)
    json.dumps([e.to_dict() for e in r.events])
    for e in r.events:
        if e.type == "node.completed":
            assert set(e.data) >= {"output", "duration_ms"}
    # each node.started is closed by exactly one completed/failed (same node, later)
    for i, e in enumerate(r.events):
        if e.type == "node.started":
            closers = [
                x for x in r.events[i + 1 :] if x.node_id == e.node_id and x.type in ("node.completed", "node.failed")
            ]
            assert closers, f"{e.node_id} started and never finished"


async def test_event_data_for_completed_run() -> None:
    doc = wf(
        [IN, SLEEP("a", 30, "A"), OUT("out", "{{ nodes.a.output }}", name="answer")],
        ["in>a", "a>out"],
        inputs={"q": {"type": "string", "default": "d"}},
    )
    r = await run(doc, {"q": "hello"})
    assert r.events[0].data["inputs"] == {"q": "hello"}
    done = {e.node_id: e for e in r.events if e.type == "node.completed"}
    assert done["in"].data["output"] == {"q": "hello"}
    assert done["a"].data["output"] == "A"
    assert done["a"].data["duration_ms"] >= 25
    assert done["out"].data["output"] == "A"
    assert r.events[-1].data["result"] == {"answer": "A"}
    assert [e.data["iteration"] for e in r.events if e.type == "node.started"] == [0, 0, 0]
    called = [e for e in r.events if e.type == "tool.called"]
    result = [e for e in r.events if e.type == "tool.result"]
    assert len(called) == 1 and len(result) == 1
    assert called[0].data["tool"] == "sem_sleep" and called[0].data["args"]["ms"] == 30
    assert result[0].data["call_id"] == called[0].data["call_id"] and result[0].data["result"] == "A"


# ============================================================================= the result object


async def test_result_has_only_output_nodes_that_ran_and_uses_names() -> None:
    doc = wf(
        [
            IN,
            C("c", "true"),
            OUT("yes", "Y", name="answer"),
            OUT("no", "N", name="other"),
            OUT("plain", "P"),
            OUT("skipped_plain", "S"),
        ],
        ["in>c", "c>yes:true", "c>no:false", "in>plain", "c>skipped_plain:false"],
    )
    r = await run(doc)
    assert r.status == "completed", r.error
    assert r.result == {"answer": "Y", "plain": "P"}
    assert r.error is None


async def test_result_is_empty_object_when_no_output_ran() -> None:
    r = await run(wf([IN, C("c", "false"), OUT("o", "x")], ["in>c", "c>o:true"]))
    assert r.status == "completed" and r.result == {}


# ============================================================================= inputs


async def test_input_defaults_applied() -> None:
    doc = wf(
        [IN, OUT("out", "{{ nodes.in.output }}")],
        ["in>out"],
        inputs={
            "a": {"type": "string", "default": "x"},
            "b": {"type": "integer", "default": 3},
            "c": {"type": "array", "default": []},
            "d": {"type": "string", "default": None},
            "e": {"type": "object", "default": {"k": [1]}},
        },
    )
    r = await run(doc, {"b": 5})
    expected = {"a": "x", "b": 5, "c": [], "d": None, "e": {"k": [1]}}
    assert r.result == {"out": expected}
    assert r.events[0].data["inputs"] == expected


async def test_invalid_inputs_all_reported_before_any_event() -> None:
    doc = wf(
        [IN, OUT("out", "{{ inputs }}")],
        ["in>out"],
        inputs={
            "req": {"type": "string"},
            "n": {"type": "integer"},
            "f": {"type": "number", "default": 1},
            "flag": {"type": "boolean", "default": False},
            "ok": {"type": "string", "default": "fine"},
        },
    )
    seen: list[Event] = []
    with pytest.raises(InputsInvalid) as info:
        await run_workflow(doc, {"n": "3", "f": True, "flag": 1, "extra": 1, "ok": "fine"}, on_event=seen.append)
    assert seen == [], "inputs are checked before anything runs"
    problems = info.value.problems
    text = str(info.value)
    for name in ("req", "n", "f", "flag", "extra"):
        assert f"'{name}'" in text, f"{name} not named in {text}"
    assert "'ok'" not in text
    assert len(problems) == 5


TYPE_CASES = [
    ("string", "x", [1, None, ["x"]]),
    ("integer", 3, [3.5, True, "3"]),
    ("number", 3.5, [True, "3.5", None, float("nan"), float("inf"), float("-inf")]),  # JSON has no NaN/infinity
    ("boolean", False, [0, 1, "true"]),
    ("array", [1], [{"a": 1}, "x", 1]),
    ("object", {"a": 1}, [[1], "x"]),
]


@pytest.mark.parametrize("type_name, good, bads", TYPE_CASES)
async def test_input_types(type_name: str, good: Any, bads: list[Any]) -> None:
    doc = wf([IN, OUT("out", "{{ inputs.v }}")], ["in>out"], inputs={"v": {"type": type_name}})
    r = await run(doc, {"v": good})
    assert r.result == {"out": good}
    for bad in bads:
        seen: list[Event] = []
        with pytest.raises(InputsInvalid) as info:
            await run_workflow(doc, {"v": bad}, on_event=seen.append)
        assert "'v'" in str(info.value) and type_name in str(info.value)
        assert seen == []


async def test_integer_input_accepts_number_type_for_number() -> None:
    doc = wf([IN, OUT("out", "{{ inputs.v }}")], ["in>out"], inputs={"v": {"type": "number"}})
    r = await run(doc, {"v": 3})
    assert r.result == {"out": 3}


async def test_missing_required_input() -> None:
    doc = wf([IN, OUT("out", "{{ inputs.v }}")], ["in>out"], inputs={"v": {"type": "string"}})
    with pytest.raises(InputsInvalid) as info:
        await run_workflow(doc, {})
    assert "'v'" in str(info.value) and "required" in str(info.value)
