"""The approval form (issue 19): the Run page shows a waiting run's request and decides it; Home lists it."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from tests.ui.test_run import APP, markdown_text, run_page
from tests.unit.test_approval import gate_doc

WAIT_S = 30


def waiting(runtime: Runtime) -> str:
    run_id = runtime.submit(gate_doc())
    deadline = time.monotonic() + WAIT_S
    while runtime.status(run_id).status != "waiting":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return run_id


def test_the_run_page_shows_the_request_and_an_edited_decision_reaches_downstream(runtime: Runtime) -> None:
    run_id = waiting(runtime)
    at = run_page(run_id)
    shown = markdown_text(at)
    assert "Waiting for you" in shown and "Send draft of hello?" in shown
    [body] = [t for t in at.text_area if t.label == "body"]
    assert body.value == "draft of hello"
    labels = [b.label for b in at.button]
    assert "approve" in labels and "reject" in labels
    body.set_value("edited on the page")
    [comment] = [t for t in at.text_input if t.label == "Comment"]
    comment.set_value("fine")
    [approve] = [b for b in at.button if b.label == "approve"]
    approve.click().run()
    assert not at.exception, at.exception
    info = runtime.wait(run_id, timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while info.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        info = runtime.wait(run_id, timeout=1)
    assert info.status == "completed" and info.result == {"sent": "edited on the page|fine"}
    decided = [e for e in runtime.reader.events(run_id) if e.type == "approval.decided"]
    assert decided[0].data["decided_by"] == "dashboard"


def test_home_lists_the_waiting_run_and_decide_opens_it(runtime: Runtime) -> None:
    run_id = waiting(runtime)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert any(s.value == "Waiting for you" for s in at.subheader)
    assert "Send draft of hello?" in markdown_text(at)
    at.button(key=f"home_decide_{run_id}").click().run()
    assert not at.exception, at.exception
    assert "Waiting for you" in markdown_text(at)


def test_a_bad_json_field_is_refused_on_the_page(runtime: Runtime, tmp_path: Path) -> None:
    doc = gate_doc()
    doc["nodes"][2]["config"]["fields"] = {"figures": {"total": "{{ 1 + 2 }}"}}
    run_id = runtime.submit(doc)
    deadline = time.monotonic() + WAIT_S
    while runtime.status(run_id).status != "waiting":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at = run_page(run_id)
    [figures] = [t for t in at.text_area if t.label == "figures (JSON)"]
    figures.set_value("{not json")
    [approve] = [b for b in at.button if b.label == "approve"]
    approve.click().run()
    assert any("Not JSON: figures" in e.value for e in at.error)
    assert runtime.status(run_id).status == "waiting"  # type: ignore[union-attr]


def test_history_shows_a_waiting_approval_as_waiting_then_its_decision(runtime: Runtime) -> None:
    from tests.ui.test_history import history_focused

    run_id = waiting(runtime)
    at = history_focused(run_id)
    labels = [e.label for e in at.expander]
    assert any("ok · execution 0 · waiting" in label and "hourglass" in label for label in labels), labels
    runtime.decide(run_id, "ok", "reject", comment="too long", decided_by="ann")
    deadline = time.monotonic() + 30
    while runtime.status(run_id).status != "completed":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at = history_focused(run_id)
    labels = [e.label for e in at.expander]
    assert any("ok · execution 0 · succeeded" in label for label in labels), labels
    shown = " ".join(j.value if isinstance(j.value, str) else str(j.value) for j in at.json)
    assert "too long" in shown and "ann" in shown, "the decision, its comment and who decided are shown"
