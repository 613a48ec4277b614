"""The Builder's "Test node" button (issue 14 §4) in AppTest, against the local OpenAI-compatible server
through the real openai client: the selected node runs alone with its latest run's inputs, in place."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer
from tests.integration.test_single_node import CHAIN, user_text
from tests.ui.test_builder import builder, button
from ui import nav


@pytest.fixture(autouse=True)
def _endpoint(monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAIServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def _select(at: Any, node_id: str) -> None:
    at.session_state["builder_selected"] = {"kind": "node", "id": node_id}
    at.run()
    assert not at.exception, at.exception


def _test_node(at: Any) -> None:
    """Click Test node and rerun until the result is shown (the browser's polling fragment does this)."""
    button(at, "Test node").click().run()
    deadline = time.monotonic() + 30
    while at.session_state.get("builder_test_running"):
        assert time.monotonic() < deadline, "the test did not end"
        time.sleep(0.1)
        at.run()
    assert not at.exception, at.exception


def _area(at: Any, node_id: str) -> Any:
    """The node's test inputs (the key holds the open workflow's slot, then the node id)."""
    return next(
        t for t in at.text_area if str(t.key).startswith("builder_test_values.") and str(t.key).endswith("." + node_id)
    )


def _values(at: Any, node_id: str) -> dict[str, Any]:
    area = _area(at, node_id)
    return json.loads(area.value)


def test_test_node_runs_only_the_selected_agent_with_its_latest_inputs(
    runtime: Runtime, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("an outline")
    fake_openai.enqueue_text("a draft")
    run_id = runtime.submit(CHAIN, {"topic": "rivers"})
    assert runtime.wait(run_id, 60).status == "completed"
    runs = len(runtime.store.list_runs())

    at = builder(copy.deepcopy(CHAIN), "example:chain.json")
    _select(at, "b")
    assert _values(at, "b") == {
        "inputs": {"topic": "rivers", "tone": "dry"},
        "nodes": {"a": "an outline"},
        "iteration": 0,
    }
    assert any("inputs of its latest run" in c.value for c in at.caption)

    edited = {"inputs": {"topic": "rivers", "tone": "warm"}, "nodes": {"a": "EDITED"}, "iteration": 0}
    _area(at, "b").set_value(json.dumps(edited))
    before = len(fake_openai.requests)
    fake_openai.enqueue_text("tested in place")
    _test_node(at)
    assert len(fake_openai.requests) == before + 1
    assert user_text(fake_openai.requests[-1]) == "Draft from: EDITED in a warm tone"
    assert [s.value for s in at.success if s.value.startswith("Output")], [s.value for s in at.success]
    assert "tokens" in next(s.value for s in at.success if s.value.startswith("Output"))
    assert any(c.value == "tested in place" for c in at.code)
    assert len(runtime.store.list_runs()) == runs  # nothing new in History


def test_a_failing_node_shows_its_error_in_red_and_bad_json_is_refused(runtime: Runtime) -> None:
    at = builder(copy.deepcopy(CHAIN), "example:chain.json")
    _select(at, "calc")
    assert _values(at, "calc") == {"inputs": {"topic": "", "tone": "dry"}, "nodes": {"size": None}, "iteration": 0}
    assert any("No earlier run" in c.value for c in at.caption)
    area = _area(at, "calc")
    area.set_value("{not json")
    _test_node(at)
    assert any("not valid JSON" in e.value for e in at.error)

    area = _area(at, "calc")
    area.set_value(json.dumps({"nodes": {"size": "oops"}}))
    _test_node(at)
    assert any(e.value.startswith("Failed") for e in at.error), [e.value for e in at.error]
    assert any("calculator" in c.value for c in at.code)

    area = _area(at, "calc")
    area.set_value(json.dumps({"nodes": {"size": 21}}))
    _test_node(at)
    assert any(c.value == "42" for c in at.code), [c.value for c in at.code]
    assert any("1 tool call" in s.value for s in at.success)


def test_another_workflow_with_the_same_node_id_has_its_own_test_inputs(runtime: Runtime) -> None:
    at = builder(copy.deepcopy(CHAIN), "example:chain.json")
    _select(at, "calc")
    _area(at, "calc").set_value(json.dumps({"nodes": {"size": 21}}))
    _test_node(at)
    assert any("1 tool call" in s.value for s in at.success)
    other = copy.deepcopy(CHAIN)
    other["name"] = "another chain"
    other["inputs"] = {"topic": {"type": "string", "default": "seas"}, "tone": {"type": "string", "default": "dry"}}
    at.session_state[nav.BUILDER_ARRIVING] = (other, "example:other.json", None)
    at.run()
    _select(at, "calc")
    assert _values(at, "calc") == {"inputs": {"topic": "seas", "tone": "dry"}, "nodes": {"size": None}, "iteration": 0}
    assert not any("1 tool call" in s.value for s in at.success), "the other workflow's result is not shown"
