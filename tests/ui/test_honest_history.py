"""Honest history on the pages (issue 14, point 5): a resumed run keeps its failed attempt with its error
text (History's summary, timeline and Nodes tab; the Run page), the duration is "active … · wall …"
alike in the table, the detail and the Run page, progress counts each outcome apart, and the Run
page's start time is its selector's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.run_times import label, times_of_rows
from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer
from ui.nav import RUN_ID
from ui.run_parts import when

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CALCULATOR = str(ROOT / "examples" / "calculator_agent.json")
ERROR = "bad request for the honest-history test"
BRANCHES = {
    "format": "workflow/v1",
    "name": "Branches",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "pick", "type": "condition", "config": {"expression": "'left'"}},
        {"id": "left", "type": "transform", "config": {"expression": "1"}},
        {"id": "right", "type": "transform", "config": {"expression": "2"}},
        {"id": "boom", "type": "transform", "config": {"expression": "1 // 0"}},
    ],
    "edges": [
        {"source": "start", "target": "pick"},
        {"source": "pick", "target": "left", "when": "left"},
        {"source": "pick", "target": "right", "when": "right"},
        {"source": "left", "target": "boom"},
    ],
}


@pytest.fixture
def resumed(runtime: Runtime, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A calculator run whose model call failed, resumed a second later, completed."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.enqueue_error(400, ERROR)
    run_id = runtime.submit(CALCULATOR)
    assert runtime.wait(run_id, 20).status == "failed"
    time.sleep(1.0)
    runtime.resume(run_id)
    assert runtime.wait(run_id, 20).status == "completed"
    runtime.store.flush()
    return run_id


def page(path: str, run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if run_id is not None:
        at.session_state[RUN_ID] = run_id
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def errors_and_code(at: AppTest) -> tuple[list[str], list[str]]:
    return [e.value for e in at.error], [c.value for c in at.code]


def test_history_keeps_the_failed_attempt_with_its_error(runtime: Runtime, resumed: str) -> None:
    at = page("views/history.py")
    errors, code = errors_and_code(at)
    assert any(e.startswith("Earlier attempt (before resume 1): node `solver` failed") for e in errors), errors
    assert any(ERROR in c for c in code), "the error text as typed"
    labels = [e.label for e in at.expander]
    earlier = [x for x in labels if "earlier attempt (before resume 1)" in x]
    assert len(earlier) == 1 and "solver · execution 0" in earlier[0] and earlier[0].endswith(" ms")
    assert earlier[0].startswith(":red[:material/cancel:]")
    solver = [x for x in labels if "solver" in x]
    assert "earlier attempt" in solver[0] and "succeeded" in solver[1], "the earlier try first, then the one that won"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Earlier attempts"] == "1" and metrics["Resumed"] == "1×"


def test_history_timeline_has_a_bar_for_the_earlier_attempt(runtime: Runtime, resumed: str) -> None:
    from engine.attempts import earlier_attempts
    from ui.history_parts import gantt_frame

    row = runtime.store.get_run(resumed)
    frame, unit = gantt_frame(
        runtime.store.node_executions(resumed),
        run_start=row.started_at,
        earlier=earlier_attempts(runtime.store.events(resumed)),
    )
    assert list(frame["node"]) == ["start", "solver · earlier attempt 1", "solver", "answer"]
    assert list(frame["status"]) == ["succeeded", "failed", "succeeded", "succeeded"]
    assert unit == "ms" or unit == "s"


def test_one_duration_label_in_the_table_the_detail_and_the_run_page(runtime: Runtime, resumed: str) -> None:
    row = runtime.store.get_run(resumed)
    expected = label(times_of_rows(runtime.store, [row])[resumed])
    assert expected.startswith("active ") and " · wall " in expected
    times = times_of_rows(runtime.store, [row])[resumed]
    assert times.idle_s is not None and times.idle_s >= 0.9, "the second of idle is not active time"
    history = page("views/history.py")
    table = history.dataframe(key="history_table").value
    assert list(table["duration"]) == [expected]
    assert any(expected in c.value for c in history.caption), [c.value for c in history.caption]
    run = page("views/run.py", resumed)
    assert any(expected in m.value for m in run.markdown), [m.value for m in run.markdown]
    errors, code = errors_and_code(run)
    assert any(e.startswith("Earlier attempt (before resume 1): node `solver` failed") for e in errors), errors
    assert any(ERROR in c for c in code)


def test_run_page_start_time_is_its_selectors(runtime: Runtime, resumed: str) -> None:
    at = page("views/run.py", resumed)
    row = runtime.store.get_run(resumed)
    shown = when(row.created_at)
    selector = at.selectbox(key="run_pick")
    assert shown in selector.format_func(resumed)
    assert any(f"started {shown}" in c.value for c in at.caption), [c.value for c in at.caption]


def test_progress_counts_each_outcome_apart(runtime: Runtime) -> None:
    run_id = runtime.submit(BRANCHES)
    assert runtime.wait(run_id, 20).status == "failed"
    runtime.store.flush()
    at = page("views/run.py", run_id)
    progress = at.get("progress")[0]
    assert progress.proto.text == "3 succeeded · 1 failed · 1 skipped of 5"
    assert progress.proto.value == 100
