"""History: the runs table and its filters, a run's detail with its Gantt chart, resume, compare, delete."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer
from ui.nav import RUN_ID

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CALCULATOR = str(ROOT / "examples" / "calculator_agent.json")
BREAKS: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "Breaks",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "boom", "type": "transform", "config": {"expression": "1 // 0"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.boom.output }}"}},
    ],
    "edges": [{"source": "start", "target": "boom"}, {"source": "boom", "target": "out"}],
}


def finished(runtime: Runtime, workflow: Any, inputs: dict[str, Any] | None = None) -> str:
    run_id = runtime.submit(workflow, inputs)
    runtime.wait(run_id, 20)
    runtime.store.flush()
    return run_id


def history() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    return at


def table_ids(at: AppTest) -> list[str]:
    return list(at.dataframe(key="history_table").value["run"]) if _has_table(at) else []


def _has_table(at: AppTest) -> bool:
    return any(getattr(d, "key", None) == "history_table" for d in at.dataframe)


def test_history_lists_filters_and_shows_a_runs_detail(runtime: Runtime) -> None:
    ok = finished(runtime, CALCULATOR)
    bad = finished(runtime, BREAKS)
    at = history()
    assert table_ids(at) == [bad, ok]
    assert at.selectbox(key="history_run").value == bad, "the newest run is selected"
    assert any("`boom`" in e.value for e in at.error) and any("1 // 0" in c.value for c in at.code)

    at.selectbox(key="history_status").select("completed").run()
    assert table_ids(at) == [ok]
    at.selectbox(key="history_status").set_value(None).run()
    assert set(at.selectbox(key="history_workflow").options) == {"Calculator agent", "Breaks"}
    at.selectbox(key="history_workflow").select(runtime.store.find_workflow("Breaks").id).run()
    assert table_ids(at) == [bad]
    at.selectbox(key="history_workflow").set_value(None).run()
    last_year = dt.date.today() - dt.timedelta(days=400)
    at.date_input(key="history_dates").set_value((last_year, last_year + dt.timedelta(days=1))).run()
    assert any("No runs match" in i.value for i in at.info)
    at.date_input(key="history_dates").set_value((dt.date.today(), dt.date.today())).run()
    assert table_ids(at) == [bad, ok]

    at.selectbox(key="history_run").select(ok).run()
    assert not at.exception, at.exception
    assert at.get("vega_lite_chart"), "the Gantt chart of node executions"
    labels = [e.label for e in at.expander]
    assert any(label.startswith(":green[:material/check_circle:] solver · execution 0 · succeeded") for label in labels)
    assert any("What is \\(12 \\+ 30\\) \\* 2?" in m.value for m in at.markdown) or any(
        "What is (12 + 30) * 2?" in str(j.value) for j in at.json
    ), "per-node inputs are shown"
    calls = next(d.value for d in at.dataframe if "tool" in d.value.columns)
    assert list(calls["tool"]) == ["calculator"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Node executions"] == 3 or metrics["Node executions"] == "3"
    assert int(metrics["Prompt tokens"]) > 0
    assert at.button(key="history_resume").disabled


def test_gantt_bars_span_each_execution(runtime: Runtime) -> None:
    from ui.history_parts import gantt_frame

    run_id = finished(runtime, str(ROOT / "examples" / "write_critique_loop.json"))
    rows = runtime.store.node_executions(run_id)
    frame, unit = gantt_frame(rows, run_start=runtime.store.get_run(run_id).created_at)
    assert len(frame) == len(rows) and (frame["end"] > frame["start"]).all()
    assert "writer #1" in set(frame["node"]), "loop executions get their own bars"
    assert set(frame["status"]) == {"succeeded"} and unit == "ms"


def test_resume_a_failed_run_from_history(
    runtime: Runtime, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.enqueue_error(400, "bad request for the test")
    run_id = finished(runtime, CALCULATOR)
    assert runtime.status(run_id).status == "failed"
    at = history()
    resume = at.button(key="history_resume")
    assert not resume.disabled
    resume.click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Run"] and at.session_state[RUN_ID] == run_id
    info = runtime.wait(run_id, 20)
    assert info.status == "completed", info.error
    at.switch_page("views/run.py")  # AppTest reruns the page it last switched to, not the one the script chose
    deadline = time.monotonic() + 10
    while ":green-badge[completed]" not in "".join(m.value for m in at.markdown) and time.monotonic() < deadline:
        at.run()
    assert [t.value for t in at.title] == ["Run"]
    assert ":green-badge[completed]" in "".join(m.value for m in at.markdown)
    assert at.session_state["run_views"][run_id].node_status["solver"] == "succeeded"


def test_compare_two_runs_of_the_same_workflow(runtime: Runtime) -> None:
    a = finished(runtime, CALCULATOR, {"question": "What is 6 * 7?"})
    b = finished(runtime, CALCULATOR, {"question": "What is 2 + 2?"})
    finished(runtime, BREAKS)
    at = history()
    at.selectbox(key="history_run").select(a).run()
    compare = at.selectbox(key="history_compare")
    assert compare.options and len(compare.options) == 1, "only runs of the same workflow"
    compare.select(b).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "status A" in d.value.columns)
    assert list(table["node"]) == ["start", "solver", "answer"]
    assert list(table["status A"]) == list(table["status B"]) == ["succeeded"] * 3
    assert not table["same output"].any() and table["ms A"].notna().all() and table["ms B"].notna().all()
    shown = " ".join(str(j.value) for j in at.json)
    assert "6 * 7" in shown and "2 + 2" in shown, "both runs' inputs side by side"
    assert any(e.label == "Outputs of solver" for e in at.expander)


def test_delete_asks_for_confirmation(runtime: Runtime) -> None:
    keep = finished(runtime, CALCULATOR)
    gone = finished(runtime, BREAKS)
    at = history()
    at.button(key="history_delete").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="history_delete_no").click().run()
    assert runtime.store.get_run(gone) is not None and not any("cannot be undone" in w.value for w in at.warning)
    at.button(key="history_delete").click().run()
    at.button(key="history_delete_yes").click().run()
    assert not at.exception, at.exception
    assert runtime.store.get_run(gone) is None and runtime.store.events(gone) == []
    assert table_ids(at) == [keep]


UNDERSCORED: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "Underscored",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "__twice__", "type": "transform", "config": {"expression": "21 * 2"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.__twice__.output }}"}},
    ],
    "edges": [{"source": "start", "target": "__twice__"}, {"source": "__twice__", "target": "out"}],
}


def history_focused(run_id: str) -> AppTest:
    """The History page opened on ``run_id`` by another page (as the Memory page's "Run …" button does)."""
    from ui.nav import HISTORY_FOCUS

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.session_state[HISTORY_FOCUS] = run_id
    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    return at


def test_a_requested_run_that_is_gone_is_said_so(runtime: Runtime) -> None:
    gone = finished(runtime, CALCULATOR)
    newest = finished(runtime, BREAKS)
    assert runtime.store.delete_run(gone)
    at = history_focused(gone)
    assert any(f"Run {gone.replace('-', chr(92) + '-')} was not found" in w.value for w in at.warning), [
        w.value for w in at.warning
    ]
    assert at.selectbox(key="history_run").value == newest, "then the newest run shows, as before"
    at = history_focused("nope ![x](http://127.0.0.1:9/x.png)")
    warnings = [w.value for w in at.warning]
    assert any("Run nope \\!\\[x\\]\\(`http://127.0.0.1:9/x.png`\\) was not found" in w for w in warnings), warnings
    assert not any("![x](" in w for w in warnings)


def test_a_requested_run_older_than_the_listed_ones_still_opens(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = finished(runtime, CALCULATOR)
    newer = [finished(runtime, BREAKS), finished(runtime, BREAKS)]
    runs = runtime.reader.runs

    def capped(**kwargs: Any) -> list[Any]:  # the store holds more runs than the page lists (MAX_RUNS)
        return runs(**{**kwargs, "limit": min(kwargs.get("limit", 50), 2)})

    monkeypatch.setattr(runtime.reader, "runs", capped)
    at = history()
    assert table_ids(at) == newer[::-1], "only the newest runs are listed"
    at = history_focused(old)
    assert not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="history_run").value == old
    assert table_ids(at) == [*newer[::-1], old]
    assert any(f"`{old}`" in m.value for m in at.markdown), "its detail is shown"


def test_compare_with_a_run_that_has_no_status_says_so(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    a = finished(runtime, CALCULATOR, {"question": "What is 6 * 7?"})
    b = finished(runtime, CALCULATOR, {"question": "What is 2 + 2?"})
    status = runtime.status
    with monkeypatch.context() as patch:  # undone before the runtime fixture shuts the runtime down
        patch.setattr(runtime, "status", lambda run_id: None if run_id == b else status(run_id))  # B went away
        at = history()
        at.selectbox(key="history_run").select(a).run()
        at.selectbox(key="history_compare").select(b).run()
    assert not at.exception, at.exception
    assert any(f"Run {b[:8]}" in w.value and "not found" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not any(m.value.startswith("**B**") for m in at.markdown), "A's status is not shown as B's"


def test_node_ids_in_expander_labels_are_escaped(runtime: Runtime) -> None:
    a = finished(runtime, UNDERSCORED)
    b = finished(runtime, UNDERSCORED)
    at = history()
    at.selectbox(key="history_run").select(a).run()
    labels = [e.label for e in at.expander]
    escaped = ":green[:material/check_circle:] \\_\\_twice\\_\\_ · execution 0 · succeeded"
    assert any(label.startswith(escaped) for label in labels), labels
    assert not any("__twice__" in label for label in labels)
    at.selectbox(key="history_compare").select(b).run()
    assert not at.exception, at.exception
    assert "Outputs of \\_\\_twice\\_\\_" in [e.label for e in at.expander]


def test_runs_table_duration_counts_from_the_start_like_the_detail() -> None:
    """The table and the run's detail show one duration: start to finish (not submit to finish)."""
    from engine.run_times import times_of_rows
    from engine.store.tables import RunRow
    from ui.history_parts import runs_frame

    row = RunRow(run_id="r1", workflow_id="w", workflow_name="W", workflow_version=1, status="completed",
                 created_at=100.0, started_at=100.5, finished_at=102.0)  # fmt: skip
    # no start recorded: from the submit
    queued = RunRow(run_id="r2", workflow_id="w", workflow_name="W", workflow_version=1, status="completed",
                    created_at=100.0, finished_at=101.0)  # fmt: skip
    times = times_of_rows(None, [row, queued])  # neither resumed nor cut off: the rows say it all
    expected = ["active 1.5 s · wall 1.5 s", "active 1.0 s · wall 1.0 s"]
    assert list(runs_frame([row, queued], times)["duration"]) == expected
