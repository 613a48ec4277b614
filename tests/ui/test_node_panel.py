"""The node panel and Rerun from here, server side (AppTest): ``?run=&node=`` opens a node's panel,
each execution with its output or error, a bad pinned output is refused in one line, a good request
starts a fork and the page goes to it, showing its source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from tests.browser.studio import branch_workflow
from ui.node_panel import TRACES
from ui.rerun_button import request_from

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def linked(run_id: str, node: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run_id
    if node:
        at.query_params["node"] = node
    at.run()
    at.switch_page("views/run.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.text, *at.error, *at.code])


def finished(runtime: Runtime, doc: dict | None = None) -> str:
    run_id = runtime.submit(doc or branch_workflow("Panel seven"))
    assert runtime.wait(run_id, 30).status in ("completed", "failed")
    runtime.store.flush()
    return run_id


def test_a_link_with_a_node_opens_its_panel_with_every_execution(runtime: Runtime) -> None:
    run_id = finished(runtime)
    at = linked(run_id, "draft")
    shown = texts(at)
    assert "node `draft`" in shown and "Offline answer" in shown
    assert any("Execution 1" in e.label for e in at.expander)
    assert at.button(key="run_node_close") is not None
    trace = at.session_state[TRACES][run_id]
    assert [r.status for r in trace.executions("trim") + trace.executions("keep")].count("skipped") == 1
    at = linked(run_id, None)
    assert "node `draft`" not in texts(at) and any("Click a node" in c.value for c in at.caption)
    assert "node `nothing`" not in texts(linked(run_id, "nothing"))  # an unknown node: no panel, no error


def test_a_failed_node_shows_its_error_in_red(runtime: Runtime) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "Fails",
        "inputs": {},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "boom", "type": "transform", "config": {"expression": "1 / 0"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.boom.output }}"}},
        ],
        "edges": [{"source": "start", "target": "boom"}, {"source": "boom", "target": "out"}],
    }
    run_id = finished(runtime, doc)
    at = linked(run_id, "boom")
    assert any("Execution 1 failed" in e.value for e in at.error)
    assert any("division" in c.value or "zero" in c.value for c in at.code)


def test_rerun_from_here_refuses_bad_json_then_forks_and_shows_the_source(runtime: Runtime) -> None:
    run_id = finished(runtime)
    at = linked(run_id, "join")
    assert any("Runs again: join, result" in c.value for c in at.caption)
    key = "run_rerun:join"
    at.selectbox(key=f"{key}_pin").select("draft").run()
    at.text_area(key=f"{key}_pin_value:draft").input('{"nope').run()
    at.button(key=f"{key}_go").click().run()
    assert not at.exception, at.exception
    assert any("is not valid JSON" in e.value for e in at.error)
    assert len(runtime.store.list_runs(limit=10)) == 1
    at.text_area(key=f"{key}_pin_value:draft").input('"pinned"').run()
    at.button(key=f"{key}_go").click().run()
    assert not at.exception, at.exception
    runs = runtime.store.list_runs(limit=10)
    fork = next(r for r in runs if r.run_id != run_id)
    assert fork.forked_from["run_id"] == run_id and fork.forked_from["node"] == "join"
    runtime.wait(fork.run_id, 30)
    at.run()
    assert at.query_params["run"] == [fork.run_id] or at.query_params["run"] == fork.run_id
    assert at.button(key="run_fork_source").label.startswith(f"Rerun of run {run_id[:8]} from node join")
    trace = at.session_state[TRACES][fork.run_id]
    assert trace.reused() == {"start", "draft", "route", "keep"}


def test_request_from_the_form() -> None:
    original = {"template": "{{ x }}"}
    assert request_from("", original, None, "") == (None, None, None)
    assert request_from('{\n  "template": "{{ x }}"\n}', original, None, "") == (None, None, None)
    assert request_from('{"template": "y"}', original, "a", "[1, 2]") == ({"template": "y"}, {"a": [1, 2]}, None)
    assert "must be a JSON object" in str(request_from("[1]", original, None, "")[2])
    error = request_from("", original, "a", "{bad")[2]
    assert error is not None and error.startswith("The pinned output of a is not valid JSON") and "\n" not in error


def test_the_panel_follows_a_running_node(runtime: Runtime, monkeypatch: Any) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.1")
    run_id = runtime.submit(str(ROOT / "examples" / "calculator_agent.json"))
    at = linked(run_id, "solver")
    deadline = time.monotonic() + 20
    while "Model output so far" not in texts(at) and time.monotonic() < deadline:
        time.sleep(0.1)
        at.run()  # (AppTest does not tick run_every: rerun as the fragment would)
    assert "Model output so far" in texts(at) and any("running" in e.label for e in at.expander)
    assert any("offered once the run has finished" in c.value for c in at.caption)
    runtime.wait(run_id, 30)
    at.run()
    at.run()
    assert any("succeeded" in e.label for e in at.expander)
    assert runtime.status(run_id).result["answer"][:30] in texts(at)
    assert at.button(key="run_rerun:solver_go") is not None
