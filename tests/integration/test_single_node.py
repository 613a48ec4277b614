"""Test one node (issue 14 §4): ``Runtime.node_test_context`` and ``Runtime.test_node`` with a real store,
the real openai client against the local OpenAI-compatible server, real tools and real memory."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.llm.openai_model import OpenAIChatModel
from engine.runtime import Runtime
from engine.single_node import NodeTestInvalid
from tests.fake_openai import FakeOpenAIServer, TextReply

CHAIN: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "test-node chain",
    "inputs": {"topic": {"type": "string"}, "tone": {"type": "string", "default": "dry"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "a", "type": "agent", "config": {"prompt": "Outline {{ inputs.topic }}."}},
        {
            "id": "b",
            "type": "agent",
            "config": {"prompt": "Draft from: {{ nodes.a.output }} in a {{ inputs.tone }} tone"},
        },
        {"id": "size", "type": "transform", "config": {"expression": "nodes.b.output | length"}},
        {"id": "long", "type": "condition", "config": {"expression": "'long' if nodes.size.output > 30 else 'short'"}},
        {
            "id": "calc",
            "type": "tool",
            "config": {"tool": "calculator", "args": {"expression": "{{ nodes.size.output }} * 2"}},
        },
        {
            "id": "each",
            "type": "map",
            "config": {
                "items": "[1, 2, 3]",
                "node": {"type": "transform", "config": {"expression": "item * 10 + index"}},
            },
        },
        {
            "id": "out",
            "type": "output",
            "config": {"value": {"text": "{{ nodes.b.output }}", "n": "{{ nodes.calc.output }}"}},
        },
    ],
    "edges": [
        {"source": "start", "target": "a"},
        {"source": "a", "target": "b"},
        {"source": "b", "target": "size"},
        {"source": "size", "target": "long"},
        {"source": "long", "target": "calc", "when": "long"},
        {"source": "long", "target": "each", "when": "short"},
        {"source": "calc", "target": "out"},
        {"source": "each", "target": "out"},
    ],
}


@pytest.fixture()
def runtime(tmp_path: Path, fake_openai: FakeOpenAIServer) -> Iterator[Runtime]:
    model = OpenAIChatModel(base_url=fake_openai.base_url, api_key="sk-test-secret", backoff_s=0.01)
    with Runtime(data_dir=str(tmp_path), llm=model) as rt:
        yield rt


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in request["messages"] if m.get("role") == "user")


def test_agent_node_is_tested_with_its_latest_inputs_and_makes_exactly_one_request(
    runtime: Runtime, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("rivers outline")
    fake_openai.enqueue_text("A draft about rivers that is long enough to be long")
    run_id = runtime.submit(CHAIN, {"topic": "rivers"})
    assert runtime.wait(run_id, 60).status == "completed"
    runs_before = [r.run_id for r in runtime.store.list_runs()]

    ctx = runtime.node_test_context(CHAIN, "b")
    assert ctx.source_run_id == run_id
    assert ctx.values() == {
        "inputs": {"topic": "rivers", "tone": "dry"},
        "nodes": {"a": "rivers outline"},
        "iteration": 0,
    }

    values = ctx.values()
    values["nodes"]["a"] = "EDITED outline"
    before = len(fake_openai.requests)
    fake_openai.enqueue_text("the tested draft")
    result = runtime.test_node(CHAIN, "b", values)
    assert result.status == "completed", result.error
    assert result.output == "the tested draft"
    assert len(fake_openai.requests) == before + 1  # exactly one model request, none for a, c or anything else
    assert user_text(fake_openai.requests[-1]) == "Draft from: EDITED outline in a dry tone"
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.input is not None and result.input["messages"] == ["Draft from: EDITED outline in a dry tone"]
    # no run was created: History is unchanged
    assert [r.run_id for r in runtime.store.list_runs()] == runs_before
    assert "sk-test-secret" not in repr(result.events)


def test_every_kind_of_node_runs_alone(runtime: Runtime, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_text("o")
    fake_openai.enqueue_text("short")
    run_id = runtime.submit(CHAIN, {"topic": "t"})
    assert runtime.wait(run_id, 60).status == "completed"
    before = len(fake_openai.requests)

    size = runtime.test_node(CHAIN, "size", runtime.node_test_context(CHAIN, "size").values())
    assert (size.status, size.output) == ("completed", 5)
    assert runtime.test_node(CHAIN, "long", {"nodes": {"size": 31}}).output == "long"
    assert runtime.test_node(CHAIN, "long", {"nodes": {"size": 3}}).output == "short"
    calc = runtime.test_node(CHAIN, "calc", {"nodes": {"size": 21}})
    assert calc.status == "completed" and calc.output == 42
    assert [(c.tool, c.args, c.ok, c.result) for c in calc.tool_calls] == [
        ("calculator", {"expression": "21 * 2"}, True, 42)
    ]
    each = runtime.test_node(CHAIN, "each", {})  # a map node is tested whole: every item runs its inner node
    assert each.output == [10, 21, 32]
    out = runtime.test_node(CHAIN, "out", {"nodes": {"b": "x", "calc": 4}})
    assert out.output == {"text": "x", "n": 4}
    start = runtime.test_node(CHAIN, "start", {"inputs": {"topic": "z"}})
    assert start.output == {"topic": "z"}
    assert len(fake_openai.requests) == before  # none of these asked the model


def test_failures_are_results_with_their_error(runtime: Runtime, fake_openai: FakeOpenAIServer) -> None:
    failed = runtime.test_node(CHAIN, "calc", {"nodes": {"size": "oops"}})
    assert failed.status == "failed" and failed.output is None
    assert failed.error and "calculator" in failed.error
    assert [c.ok for c in failed.tool_calls] == [False]
    render = runtime.test_node(CHAIN, "long", {"nodes": {"size": "text"}})
    assert render.status == "failed" and "'>' not supported" in (render.error or "")
    fake_openai.enqueue_error(400, "bad request from the endpoint")
    agent = runtime.test_node(CHAIN, "a", {"inputs": {"topic": "x"}})
    assert agent.status == "failed" and agent.error


def test_without_an_earlier_run_the_needed_inputs_are_empty(runtime: Runtime) -> None:
    ctx = runtime.node_test_context(CHAIN, "b")
    assert ctx.source_run_id is None
    assert ctx.values() == {"inputs": {"topic": "", "tone": "dry"}, "nodes": {"a": None}, "iteration": 0}
    out = runtime.node_test_context(CHAIN, "out")
    assert out.nodes == {"b": None, "calc": None}


def test_a_node_that_did_not_run_takes_the_latest_run_that_reached_it(
    runtime: Runtime, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("o1")
    fake_openai.enqueue_text("a draft well over thirty characters long")
    long_run = runtime.submit(CHAIN, {"topic": "one"})
    assert runtime.wait(long_run, 60).status == "completed"
    fake_openai.enqueue_text("o2")
    fake_openai.enqueue_text("tiny")
    short_run = runtime.submit(CHAIN, {"topic": "two"})
    assert runtime.wait(short_run, 60).status == "completed"
    calc = runtime.node_test_context(CHAIN, "calc")  # skipped in the latest run: the run before reached it
    assert calc.source_run_id == long_run and calc.nodes == {"size": 40}
    each = runtime.node_test_context(CHAIN, "each")
    assert each.source_run_id == short_run


def test_bad_requests_say_what_is_wrong(runtime: Runtime) -> None:
    with pytest.raises(NodeTestInvalid, match="no such node"):
        runtime.node_test_context(CHAIN, "nope")
    with pytest.raises(NodeTestInvalid, match="'nodes' must be an object"):
        runtime.test_node(CHAIN, "b", {"nodes": [1]})
    with pytest.raises(NodeTestInvalid, match="unknown keys"):
        runtime.test_node(CHAIN, "b", {"node": {}})
    broken = copy.deepcopy(CHAIN)
    broken["nodes"][3]["config"] = {"expression": "nodes.b.output |"}
    with pytest.raises(NodeTestInvalid, match="does not parse"):
        runtime.test_node(broken, "size", {})
    # a problem elsewhere in the workflow does not stop testing this node
    broken["nodes"][2]["config"] = {"prompt": "{{ nodes.zzz.output }}"}
    assert runtime.test_node(broken, "each", {}).status == "completed"


def test_a_test_is_time_limited_and_cancellable(runtime: Runtime, fake_openai: FakeOpenAIServer) -> None:
    slow = copy.deepcopy(CHAIN)
    slow["nodes"][1]["timeout_s"] = 0.5
    fake_openai.enqueue(TextReply("late", delay_s=6))
    began = time.monotonic()
    result = runtime.test_node(slow, "a", {"inputs": {"topic": "x"}})
    assert (
        result.status == "failed" and "0.5" in (result.error or "") and time.monotonic() - began < 5
    )  # generous: a loaded machine

    fake_openai.enqueue(TextReply("later", delay_s=8))
    test_id = runtime.start_node_test(CHAIN, "a", {"inputs": {"topic": "x"}})
    time.sleep(0.3)
    began = time.monotonic()
    assert runtime.cancel_node_test(test_id)
    cancelled = None
    while cancelled is None and time.monotonic() - began < 7:
        cancelled = runtime.node_test_result(test_id, 0.2)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert time.monotonic() - began < 5  # well before the answer would come (8 s)
    assert runtime.store.list_runs() == []


def test_an_agent_with_memory_recalls_but_saves_nothing(runtime: Runtime, fake_openai: FakeOpenAIServer) -> None:
    import json

    from memory import reset_default_backends

    reset_default_backends()
    doc = json.loads((Path(__file__).resolve().parents[2] / "examples" / "memory_chat.json").read_text())
    fake_openai.enqueue_text("Hello Alice.")
    run_id = runtime.submit(doc, {"message": "My name is Alice.", "user": "tn"})
    assert runtime.wait(run_id, 120).status == "completed"
    ctx = runtime.node_test_context(doc, "assistant")
    assert ctx.inputs == {"message": "My name is Alice.", "user": "tn"}
    values = {**ctx.values(), "inputs": {"message": "What's my name?", "user": "tn"}}
    fake_openai.enqueue_text("You are Alice.")
    result = runtime.test_node(doc, "assistant", values)
    assert result.status == "completed" and result.output == "You are Alice."
    kinds = [e.type for e in result.events]
    assert "memory.recalled" in kinds and "memory.saved" not in kinds
    recalled = next(e for e in result.events if e.type == "memory.recalled").data
    assert recalled["agent_id"] == "assistant-tn" and any("Alice" in h["text"] for h in recalled["hits"])
    assert "Alice" in user_text(fake_openai.requests[-1])
    assert any("saves nothing" in line for line in result.logs)
    reset_default_backends()
