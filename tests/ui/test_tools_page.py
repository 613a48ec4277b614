"""Tools and Settings pages: listing, "try it", connection test, and no key ever shown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ECHO = {
    "format": "workflow/v1",
    "name": "Echo",
    "inputs": {"q": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "agent", "config": {"prompt": "{{ inputs.q }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.ask.output }}"}},
    ],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}],
}


def _page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_tools_page_lists_tools_with_schema() -> None:
    at = _page("tools")
    options = at.selectbox(key="tools_selected").options
    assert {"calculator", "file_reader", "web_search"} <= set(options)
    assert at.json, "the schema is shown as JSON"


def test_python_tool_shows_its_isolation_and_per_call_limits() -> None:
    from tools.builtin import python_exec as pe

    at = _page("tools")
    at.selectbox(key="tools_selected").select("python").run()
    captions = [c.value.replace("\\", "") for c in at.caption if "Isolation of the code" in c.value]  # md-escaped
    assert len(captions) == 1 and pe.isolation_mode() in captions[0] and "per-call limits" in captions[0], captions
    assert ("WEAK" in captions[0]) == bool(pe.weaknesses()), captions


def call(at: AppTest) -> AppTest:
    [b for b in at.button if b.label == "Call the tool"][0].click().run()
    assert not at.exception, at.exception
    return at


def test_try_it_is_a_form_from_the_schema_and_calls_the_calculator() -> None:
    at = _page("tools")
    at.selectbox(key="tools_selected").select("calculator").run()
    at.text_input(key="tools_arg__calculator__expression").input("6 * 7")  # a form: sent on submit
    call(at)
    assert any(m.label == "Duration" for m in at.metric)
    assert any("42" in c.value for c in at.code)


def test_try_it_widgets_follow_the_schema_and_remember_arguments_per_tool() -> None:
    at = _page("tools")
    at.selectbox(key="tools_selected").select("web_search").run()
    count = at.number_input(key="tools_arg__web_search__max_results")
    assert count.value == 5 and count.min == 1 and count.max == 20, "the schema's default and bounds"
    at.text_input(key="tools_arg__web_search__query").input("offline test")
    count.set_value(3)
    call(at)
    at.selectbox(key="tools_selected").select("python").run()
    # code gets the Ace editor (a component AppTest cannot type into: its value is set as the browser would)
    at.session_state["tools_arg__python__code"] = "print(6 * 7)"
    call(at)
    at.selectbox(key="tools_selected").select("web_search").run()
    assert at.text_input(key="tools_arg__web_search__query").value == "offline test"
    assert at.number_input(key="tools_arg__web_search__max_results").value == 3
    at.selectbox(key="tools_selected").select("python").run()
    (editor,) = at.get("component_instance")  # the Ace editor, opened on the code last sent
    assert editor.proto.component_name == "streamlit_ace.streamlit_ace"
    args = json.loads(editor.proto.json_args)
    assert (args["defaultValue"], args["mode"], args["tabSize"]) == ("print(6 * 7)", "python", 4)
    assert not [t for t in at.text_area if t.key == "tools_arg__python__code"], "no plain text area for code"


def test_try_it_shows_a_tool_error_in_red_and_a_missing_argument() -> None:
    at = _page("tools")
    at.selectbox(key="tools_selected").select("calculator").run()
    at.text_input(key="tools_arg__calculator__expression").input("1/0")
    call(at)
    assert any("reported an error" in e.value for e in at.error)
    assert any("zero" in c.value.lower() for c in at.code), "the tool's own words are shown"
    assert not at.success, "an error is not shown as a result"
    at.selectbox(key="tools_selected").select("file_reader").run()
    call(at)  # the required path left empty: the tool says what is wrong, in red
    assert any("reported an error" in e.value for e in at.error)


def test_settings_test_connection_and_key_never_shown(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-key-123")
    at = _page("settings")
    at.button(key="settings_test").click().run()
    assert not at.exception
    assert any("Connected" in s.value for s in at.success)
    rendered = " ".join(
        str(e.value)
        for e in [*at.markdown, *at.caption, *at.success, *at.warning, *at.text_input]
        if hasattr(e, "value")
    )
    assert "sk-very-secret-key-123" not in rendered
    assert "never shown" in rendered
    assert any("fake-model" in t.value for t in at.text), "the endpoint's model names are shown as plain text"
    assert not at.warning, "no default model set: nothing to miss"
    at.text_input(key="settings_model").input("gpt-none")
    [b for b in at.button if b.label == "Save settings"][0].click().run()
    at.button(key="settings_test").click().run()
    assert any("is not among them" in w.value and "none" in w.value for w in at.warning), [w.value for w in at.warning]


def test_settings_save_applies_to_new_runs_and_leaves_os_environ_alone(
    fake_openai: FakeOpenAIServer, runtime: Runtime
) -> None:
    """Save hands the runtime new settings: the next run talks to the saved endpoint with the saved model, the
    process environment is not written, and a run started before keeps the settings it started with."""
    before = dict(os.environ)
    first = runtime.submit(ECHO, {"q": "before"})
    assert runtime.wait(first, timeout=30).status == "completed"
    assert not fake_openai.requests, "no endpoint configured yet: the offline model answered"
    at = _page("settings")
    at.text_input(key="settings_base_url").input(fake_openai.base_url)  # a form: sent on submit
    at.text_input(key="settings_model").input("local-model")
    [b for b in at.button if b.label == "Save settings"][0].click().run()
    assert any("Saved" in s.value for s in at.success)
    assert dict(os.environ) == before, "Save never writes os.environ"
    assert (runtime.settings.llm.base_url, runtime.settings.llm.model) == (fake_openai.base_url, "local-model")
    fake_openai.enqueue_text("from the saved endpoint")
    second = runtime.submit(ECHO, {"q": "after"})
    info = runtime.wait(second, timeout=30)
    assert info.status == "completed" and info.result == {"out": "from the saved endpoint"}, info
    assert fake_openai.last_request["model"] == "local-model"


def test_settings_run_timeout_for_new_workflows_reaches_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timeout saved on Settings is written into workflows made with New; cleared, they get none."""
    from engine import settings as user_settings

    at = _page("settings")
    save = lambda: [b for b in at.button if b.label == "Save settings"][0].click().run()  # noqa: E731
    at.number_input(key="settings_timeout").set_value(120.0)
    save()
    assert user_settings.load(Path(os.environ['DATA_DIR']).resolve() / 'settings.json').new_workflow_timeout_s == 120.0
    at.number_input(key="settings_timeout").set_value(None)
    save()
    assert user_settings.load(Path(os.environ['DATA_DIR']).resolve() / 'settings.json').new_workflow_timeout_s is None
    at.number_input(key="settings_timeout").set_value(90.0)
    save()
    at.switch_page("views/builder.py").run()
    at.button(key="builder_new").click().run()
    assert not at.exception, at.exception
    assert at.session_state["builder_doc"]["settings"] == {"timeout_s": 90.0}
    at.switch_page("views/settings.py").run()
    at.number_input(key="settings_timeout").set_value(None)
    save()
    at.switch_page("views/builder.py").run()
    at.button(key="builder_new").click().run()
    assert "settings" not in at.session_state["builder_doc"]


def test_plugin_load_errors_are_shown_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLS_MODULES", "no_such_plugin_![x](http://127.0.0.1:9/x.png)")
    at = _page("tools")
    warnings = [w.value for w in at.warning]
    assert any("no\\_such\\_plugin\\_\\!\\[x\\]\\(`http" in w and "failed to load" in w for w in warnings), warnings
    assert not any("![x](" in w for w in warnings)
    assert at.selectbox(key="tools_selected").options, "the other tools are still listed"
