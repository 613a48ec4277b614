"""Event data the executor emits: always plain, strict JSON, and telling the truth.

Each test pins one defect that was seen:

- event data held the raw values templates render (a Jinja generator in a tool
  node's ``args``), which no JSON encoder takes, so the store could not write
  the run;
- NaN and infinities passed through to outputs and events (strict JSON has neither);
- a node cancelled while it slept in its retry backoff got no terminal event;
- a tool node's output was cut to the 20,000 characters meant for a model;
- call ids started again at ``call_1`` after a resume;
- the ``llm.token`` deltas of a failed attempt and of its retry could not be told apart.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from datetime import datetime
from typing import Any

import pytest

import tools
from engine import Event, RunResult, load_workflow, run_workflow
from engine.errors import ModelError
from engine.executor import NodeContextImpl, _Run, execute, replay_from_events
from engine.llm.base import ChatReply, ChatRequest, DeltaSink, ToolCall
from engine.nodes import tool as tool_node
from engine.untrusted import read_blocks
from tools.plain import to_plain

Doc = dict[str, Any]

CALLS: dict[str, int] = {}


async def ev_consume(value: Any) -> list[Any]:
    """Return ``list(value)``: consumes whatever iterable it is given."""
    return list(value)


async def ev_big(n: int) -> list[int]:
    """Return ``list(range(n))``."""
    return list(range(n))


async def ev_number(text: str) -> float:
    """Return ``float(text)`` (so 'nan' and 'inf' too)."""
    return float(text)


async def ev_broken(what: str) -> str:
    """Always fail, the way a backend that is down does (retryable: another try may find it up)."""
    raise RuntimeError(f"the {what} backend is down")


async def ev_flaky(key: str) -> str:
    """Fail the first call for ``key``, succeed after."""
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] == 1:
        raise tools.ToolError("first call fails")
    return f"ok {CALLS[key]}"


# This module's runs use their own registry: the usual tools plus these, the default registry untouched.
TOOLS = tools.default_registry().copy()
for _fn in (ev_consume, ev_big, ev_number, ev_flaky, ev_broken):
    TOOLS.register(_fn)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


def doc(nodes: list[Doc], edges: list[tuple[str, str]], *, inputs: Doc | None = None) -> Doc:
    return {
        "format": "workflow/v1",
        "name": "events",
        "inputs": inputs or {},
        "nodes": [{"id": "in", "type": "input"}, *nodes],
        "edges": [{"source": s, "target": t} for s, t in edges],
    }


def strict_json(events: list[Event]) -> None:
    """Every event encodes as strict JSON (no NaN, no Infinity, no foreign objects)."""
    for event in events:
        json.dumps(event.to_dict(), allow_nan=False)


def of(result: RunResult, type_: str, node_id: str | None = None) -> list[Event]:
    return [e for e in result.events if e.type == type_ and (node_id is None or e.node_id == node_id)]


# ----------------------------------------------------------------------------- 1. plain JSON event data

NS = "{{ namespace(a=1) }}"  # a lone expression keeps its type: a jinja2 Namespace, which JSON has no type for
NS_TEXT = "<Namespace {'a': 1}>"


async def ev_type(value: Any, deep: Any = None) -> str:
    """Return the names of the types of ``value`` and of ``deep["x"][0]``."""
    return f"{type(value).__name__} {type(deep['x'][0]).__name__}"


TOOLS.register(ev_type)


async def test_foreign_values_in_tool_args_fail_the_tool_not_the_event_log() -> None:
    """Like the reported workflow: the calculator refuses a non-text expression; every event is still JSON."""
    wf = doc([{"id": "t", "type": "tool", "config": {"tool": "calculator", "args": {"expression": NS}}}], [("in", "t")])
    result = await run_workflow(wf, {}, tools=TOOLS)
    strict_json(result.events)
    (called,) = of(result, "tool.called", "t")
    assert called.data["args"] == {"expression": NS_TEXT}
    (failed,) = of(result, "node.failed", "t")
    assert failed.data["input"]["args"] == {"expression": NS_TEXT}
    assert result.status == "failed" and "calculator" in (result.error or "")


async def test_a_tool_gets_the_rendered_values_while_events_record_them_as_json() -> None:
    wf = doc(
        [
            {"id": "t", "type": "tool", "config": {"tool": "ev_type", "args": {"value": NS, "deep": {"x": [NS]}}}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.t.output }}"}},
        ],
        [("in", "t"), ("t", "out")],
    )
    result = await run_workflow(wf, {}, tools=TOOLS)
    strict_json(result.events)
    assert result.status == "completed", result.error
    assert result.result == {"out": "Namespace Namespace"}
    (called,) = of(result, "tool.called", "t")
    assert called.data["args"] == {"value": NS_TEXT, "deep": {"x": [NS_TEXT]}}
    (done,) = of(result, "node.completed", "t")
    assert done.data["input"]["args"] == {"value": NS_TEXT, "deep": {"x": [NS_TEXT]}}


class Opaque:
    """A value no JSON encoder knows, as a Python caller may pass inside an ``object`` input."""

    def __str__(self) -> str:
        return "<opaque>"


async def test_foreign_inputs_from_a_python_caller_fail_the_input_node_and_events_stay_json() -> None:
    wf = doc([], [], inputs={"cfg": {"type": "object"}})
    result = await run_workflow(wf, {"cfg": {"when": datetime(2024, 1, 2), "obj": Opaque(), "n": (1, 2)}}, tools=TOOLS)
    strict_json(result.events)
    assert result.events[0].data["inputs"] == {"cfg": {"when": "2024-01-02 00:00:00", "obj": "<opaque>", "n": [1, 2]}}
    assert result.status == "failed" and result.node_id == "in"
    assert "datetime, which is not a JSON value" in (result.error or "")


async def test_a_generator_in_args_is_recorded_by_its_text_and_not_consumed() -> None:
    """Whatever the template engine hands over (here a generator), the executor records it as JSON."""
    run = _Run(load_workflow(doc([], [])), {}, llm=ScriptedModel([]), on_event=None, run_id="gen", tools=TOOLS)
    ctx = NodeContextImpl(run, "t", 0)
    gen = (i for i in range(3))
    ctx.set_input({"tool": "ev_consume", "args": {"value": gen}})
    result = await ctx.call_tool("ev_consume", {"value": gen})
    assert result.ok and result.value == [0, 1, 2]
    strict_json(run.events)
    called, returned = run.events
    assert called.type == "tool.called" and "generator" in called.data["args"]["value"]
    assert returned.data["result"] == [0, 1, 2]
    assert "generator" in ctx.input["args"]["value"]  # type: ignore[index]


class _Odd:
    def __str__(self) -> str:
        raise RuntimeError("no text either")


def test_json_value_normalises_event_data_and_stays_strict_for_outputs() -> None:
    gen = (i for i in range(3))
    data = {"a": (1, 2.5, float("nan")), 3: {"b": [float("inf"), -float("inf"), "x", None, True]}, "g": gen}
    plain = to_plain(data)
    assert plain["a"] == [1, 2.5, None]
    assert plain["3"] == {"b": [None, None, "x", None, True]}
    assert isinstance(plain["g"], str) and "generator" in plain["g"]
    assert list(gen) == [0, 1, 2], "recording a value must not consume it"
    assert to_plain({"o": _Odd()}) == {"o": "<_Odd>"}
    json.dumps(plain, allow_nan=False)
    with pytest.raises(TypeError, match="generator"):
        to_plain({"g": (i for i in range(3))}, "raise")  # a node's output must be JSON: it fails the node
    assert to_plain(float("nan"), "raise") is None and to_plain(math.inf, "raise") is None


# ----------------------------------------------------------------------------- 5. NaN and Infinity


EXPRESSIONS = {"nan": "1e308 * 10 - 1e308 * 10", "inf": "1e308 * 10", "-inf": "-1e308 * 10"}


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
async def test_non_finite_floats_become_null_in_outputs_results_and_events(text: str) -> None:
    wf = doc(
        [
            {"id": "t", "type": "tool", "config": {"tool": "ev_number", "args": {"text": text}}},
            {"id": "x", "type": "transform", "config": {"expression": EXPRESSIONS[text]}},
            {
                "id": "out",
                "type": "output",
                "config": {"value": {"t": "{{ nodes.t.output }}", "x": "{{ nodes.x.output }}"}},
            },
        ],
        [("in", "t"), ("t", "x"), ("x", "out")],
    )
    # (a number input cannot be one: check_inputs wants finite numbers)
    result = await run_workflow(wf, {}, tools=TOOLS)
    assert result.status == "completed", result.error
    strict_json(result.events)
    assert result.result == {"out": {"t": None, "x": None}}
    (tool_result,) = of(result, "tool.result", "t")
    assert tool_result.data["result"] is None


# ----------------------------------------------------------------------------- 2. cancelled in the backoff


async def test_a_node_cancelled_in_its_retry_backoff_gets_node_failed_cancelled() -> None:
    wf = doc(
        [
            {"id": "s", "type": "transform", "config": {"expression": "1"}},
            {
                "id": "a",
                "type": "tool",
                "config": {"tool": "ev_broken", "args": {"what": "search"}},
                "retry": {"attempts": 3, "backoff_s": 5},
            },
            {"id": "b", "type": "transform", "config": {"expression": "1 // 0"}},
        ],
        [("in", "s"), ("s", "a"), ("s", "b")],
    )
    started = time.perf_counter()
    result = await run_workflow(wf, {}, tools=TOOLS)
    assert time.perf_counter() - started < 4, "the run must not wait out the backoff"
    strict_json(result.events)
    assert result.status == "failed" and result.node_id == "b"
    a_events = [e.type for e in result.events if e.node_id == "a"]
    assert a_events == ["node.started", "tool.called", "tool.result", "log", "node.failed"], a_events
    (failed,) = of(result, "node.failed", "a")
    assert failed.data["cancelled"] is True and failed.data["attempts"] == 1
    assert "the search backend is down" in failed.data["last_error"]
    assert result.events[-1].type == "run.failed"


async def test_a_run_cancelled_in_a_retry_backoff_closes_the_node() -> None:
    wf = doc(
        [
            {
                "id": "a",
                "type": "tool",
                "config": {"tool": "ev_broken", "args": {"what": "search"}},
                "retry": {"attempts": 2, "backoff_s": 30},
            }
        ],
        [("in", "a")],
    )
    seen: list[Event] = []
    task = asyncio.ensure_future(run_workflow(wf, {}, on_event=seen.append, tools=TOOLS))
    while not any(e.type == "log" for e in seen):
        await asyncio.sleep(0.005)
    task.cancel()
    result = await task
    assert result.status == "cancelled"
    a_events = [e.type for e in result.events if e.node_id == "a"]
    assert a_events == ["node.started", "tool.called", "tool.result", "log", "node.failed"]
    assert of(result, "node.failed", "a")[0].data["cancelled"] is True


# ----------------------------------------------------------------------------- 3. tool node output vs model cap


async def test_a_tool_nodes_output_is_the_tools_result_not_a_truncated_text() -> None:
    wf = doc(
        [
            {"id": "t", "type": "tool", "config": {"tool": "ev_big", "args": {"n": 5000}}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.t.output }}"}},
        ],
        [("in", "t"), ("t", "out")],
    )
    result = await run_workflow(wf, {}, tools=TOOLS)
    assert result.status == "completed", result.error
    assert result.result == {"out": list(range(5000))}
    (tool_result,) = of(result, "tool.result", "t")
    assert tool_result.data["result"] == list(range(5000)) and "truncated" not in tool_result.data
    assert tool_node.TOOL_NODE_MAX_RESULT_CHARS >= 1_000_000


async def test_a_tool_nodes_output_over_its_cap_is_truncated_visibly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool_node, "TOOL_NODE_MAX_RESULT_CHARS", 100)
    wf = doc([{"id": "t", "type": "tool", "config": {"tool": "ev_big", "args": {"n": 5000}}}], [("in", "t")])
    result = await run_workflow(wf, {}, tools=TOOLS)
    (tool_result,) = of(result, "tool.result", "t")
    assert tool_result.data["truncated"] is True
    (done,) = of(result, "node.completed", "t")
    assert isinstance(done.data["output"], str) and "truncated" in done.data["output"]


class ScriptedModel:
    """A chat model that plays a script: each round streams its deltas, then raises or replies."""

    name = "scripted"

    def __init__(self, rounds: list[tuple[list[str], Any]]):
        self.rounds = list(rounds)
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest, on_delta: DeltaSink, on_failure: object = None) -> ChatReply:
        self.requests.append(request)
        deltas, outcome = self.rounds.pop(0)
        for delta in deltas:
            on_delta(delta)
            await asyncio.sleep(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_an_agents_tool_result_keeps_the_model_cap() -> None:
    model = ScriptedModel(
        [
            ([], ChatReply(content="", tool_calls=(ToolCall(id="m1", name="ev_big", arguments='{"n": 5000}'),))),
            (["Done."], ChatReply(content="Done.")),
        ]
    )
    wf = doc([{"id": "ag", "type": "agent", "config": {"prompt": "go", "tools": ["ev_big"]}}], [("in", "ag")])
    result = await run_workflow(wf, {}, llm=model, tools=TOOLS)
    assert result.status == "completed", result.error
    (tool_result,) = of(result, "tool.result", "ag")
    assert tool_result.data["truncated"] is True
    seen = model.requests[1].messages[-1]
    _, (block,) = read_blocks(seen["content"])  # the result is one untrusted data block
    assert seen["role"] == "tool" and len(block.content) < tools.DEFAULT_MAX_RESULT_CHARS + 200
    assert "truncated" in block.content


# ----------------------------------------------------------------------------- 4. call ids after a resume


async def test_call_ids_continue_after_a_resume() -> None:
    wf = load_workflow(
        tools=TOOLS,
        source=doc(
            [
                {"id": "t1", "type": "tool", "config": {"tool": "ev_big", "args": {"n": 2}}},
                {"id": "t2", "type": "tool", "config": {"tool": "ev_flaky", "args": {"key": "resume"}}},
            ],
            [("in", "t1"), ("t1", "t2")],
        )
    )
    first = await execute(wf, {}, llm=ScriptedModel([]), run_id="r1", tools=TOOLS)
    assert first.status == "failed"
    replay = replay_from_events(first.events)
    second = await execute(wf, {}, llm=ScriptedModel([]), run_id="r1", replay=replay, tools=TOOLS)
    assert second.status == "completed", second.error
    log = first.events + second.events
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    ids = [e.data["call_id"] for e in log if e.type == "tool.called"]
    assert ids == ["call_1", "call_2", "call_3"]
    assert replay_from_events(log).calls == 3


# ----------------------------------------------------------------------------- 6. llm.token attempts


async def test_llm_tokens_of_a_failed_attempt_are_told_apart_from_the_retry() -> None:
    model = ScriptedModel(
        [
            (["part", "ial…"], ModelError("the connection dropped", retryable=True)),
            (["Fi", "nal."], ChatReply(content="Final.")),
        ]
    )
    wf = doc(
        [{"id": "ag", "type": "agent", "config": {"prompt": "go"}, "retry": {"attempts": 2, "backoff_s": 0}}],
        [("in", "ag")],
    )
    result = await run_workflow(wf, {}, llm=model, tools=TOOLS)
    assert result.status == "completed", result.error
    texts: dict[tuple[int, int], str] = {}
    for event in of(result, "llm.token", "ag"):
        key = (event.data["attempt"], event.data["step"])
        texts[key] = texts.get(key, "") + event.data["delta"]
    assert texts == {(1, 0): "partial…", (2, 0): "Final."}
    (completed,) = of(result, "llm.completed", "ag")
    assert completed.data["attempt"] == 2
    assert of(result, "node.completed", "ag")[0].data["output"] == "Final."
