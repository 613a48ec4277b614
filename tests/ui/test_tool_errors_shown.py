"""A failed tool call is shown in red on every page: Run, History and the Tools page's "Try it" (issue 12 §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from ui.nav import RUN_ID

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ERROR = "ZeroDivisionError: division by zero (line 2 of the code)"
RAISES: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "Code that raises",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "crunch", "type": "tool", "config": {"tool": "python", "args": {"code": "print('half way')\n1 / 0"}}},
    ],
    "edges": [{"source": "start", "target": "crunch"}],
}


def _failed_run(runtime: Runtime) -> str:
    run_id = runtime.submit(RAISES)
    info = runtime.wait(run_id, 30)
    assert info.status == "failed" and ERROR in (info.error or "")
    runtime.store.flush()
    return run_id


def _page(name: str, run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if run_id is not None:
        at.session_state[RUN_ID] = run_id
    at.run()
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at


def _assert_failed_call_in_red(at: AppTest) -> None:
    assert any("Tool `python` failed in node `crunch`" in e.value for e in at.error), [e.value for e in at.error]
    assert any(c.value == ERROR for c in at.code)
    detail = [c.value for c in at.code if "Traceback" in c.value]
    assert detail and "half way" in detail[0]
    calls = next(d for d in at.dataframe if "tool" in d.value.columns)
    assert list(calls.value["status"]) == ["error"]
    assert ERROR in calls.value["result / error"][0]
    styles = calls.proto.arrow_data.styler.styles  # the failed row is drawn in red
    assert "#d33" in styles


def test_run_page_shows_a_failed_tool_call_in_red(runtime: Runtime) -> None:
    _assert_failed_call_in_red(_page("run", _failed_run(runtime)))


def test_history_shows_a_failed_tool_call_in_red(runtime: Runtime) -> None:
    run_id = _failed_run(runtime)
    at = _page("history")
    assert at.selectbox(key="history_run").value == run_id
    _assert_failed_call_in_red(at)


def test_try_it_shows_python_code_that_raises_as_an_error() -> None:
    at = _page("tools")
    at.selectbox(key="tools_selected").select("python").run()
    at.session_state["tools_arg__python__code"] = (
        "print('half way')\n1 / 0"  # the form's code editor, as the browser sets it
    )
    [b for b in at.button if b.label == "Call the tool"][0].click().run()
    assert not at.exception, at.exception
    assert not at.success
    assert any("the call failed" in e.value for e in at.error)
    assert any(c.value == ERROR for c in at.code)
    assert any("Traceback" in c.value and "half way" in c.value for c in at.code)
