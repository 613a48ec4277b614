"""Home: which model answers (never the key), recent runs, templates that open or run in one click."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from ui.nav import RUN_ID

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TEMPLATES = ["Calculator agent", "Parallel summariser", "Research assistant", "Ticket triage", "Write and critique"]


def home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def everything_shown(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "success", "warning", "error", "code", "text")
        for e in at.get(kind)
    ]
    parts += [b.label for b in at.button]
    return "\n".join(str(p) for p in parts)


def test_home_says_offline_and_lists_templates() -> None:
    at = home()
    assert any("the offline model that ships with the studio: answers are offline" in i.value for i in at.info)
    shown = everything_shown(at)
    for name in TEMPLATES:
        assert f"**{name}**" in shown
    assert "by calling the calculator tool" in shown, "each template shows its description"
    stems = [p.stem for p in sorted((ROOT / "examples").glob("*.json"))]
    keys = {b.key for b in at.button}
    assert {f"home_open_{s}" for s in stems} <= keys and {f"home_run_{s}" for s in stems} <= keys
    assert "No runs yet" in shown


def test_home_names_the_endpoint_and_model_but_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://alice:hunter2@127.0.0.1:9/v1?token=abc")
    monkeypatch.setenv("OPENAI_MODEL", "qwen-small")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-key-123")
    at = home()
    banner = " ".join(s.value for s in at.success)
    assert "OpenAI-compatible endpoint" in banner and "`http://127.0.0.1:9/v1`" in banner and "`qwen-small`" in banner
    shown = everything_shown(at)
    for secret in ("sk-very-secret-key-123", "hunter2", "alice", "token=abc"):
        assert secret not in shown


def test_run_on_a_template_starts_a_run_and_opens_the_run_page(runtime: Runtime) -> None:
    at = home()
    at.button(key="home_run_calculator_agent").click().run()
    assert not at.exception, at.exception
    run_id = at.session_state[RUN_ID]
    assert runtime.status(run_id) is not None and runtime.status(run_id).workflow_name == "Calculator agent"
    assert [t.value for t in at.title] == ["Run"]
    assert runtime.wait(run_id, 20).status == "completed"
    at.switch_page("views/run.py")  # AppTest reruns the page it last switched to, not the one the script chose
    deadline = time.monotonic() + 10
    while ":green-badge[completed]" not in everything_shown(at) and time.monotonic() < deadline:
        at.run()
    assert [t.value for t in at.title] == ["Run"] and ":green-badge[completed]" in everything_shown(at)
    assert at.session_state["run_views"][run_id].node_status == {n: "succeeded" for n in ("start", "solver", "answer")}
    at.switch_page("views/builder.py").run()  # at once: only a start from the Builder itself goes on to Run
    assert [t.value for t in at.title] != ["Run"] and "#### Inspector" in everything_shown(at)


def test_recent_runs_link_to_history_when_finished(runtime: Runtime) -> None:
    run_id = runtime.submit(str(ROOT / "examples" / "triage_branch.json"))
    runtime.wait(run_id, 20)
    runtime.store.flush()
    at = home()
    assert ":green-badge[completed]" in everything_shown(at)
    details = at.button(key=f"home_recent_{run_id}")
    assert details.label == "Details"
    details.click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["History"]
    assert at.selectbox(key="history_run").value == run_id


def test_recent_running_run_links_to_the_run_page(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.2")
    run_id = runtime.submit(str(ROOT / "examples" / "calculator_agent.json"))
    deadline = time.monotonic() + 10
    while runtime.store.get_run(run_id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    at = home()
    watch = at.button(key=f"home_recent_{run_id}")
    assert watch.label == "Watch"
    watch.click().run()
    assert [t.value for t in at.title] == ["Run"] and at.session_state[RUN_ID] == run_id
    runtime.cancel(run_id)


def test_open_in_builder_hands_the_template_to_the_builder() -> None:
    at = home()
    at.button(key="home_open_calculator_agent").click().run()
    assert at.session_state["builder_doc"]["name"] == "Calculator agent"
    assert at.session_state["builder_source"] == "example:calculator_agent.json"


def test_home_survives_a_malformed_saved_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A saved URL whose port is no number is shown as not usable (without its secrets), not a traceback."""
    import json


    path = Path(os.environ["DATA_DIR"]).resolve() / "settings.json"  # saved before the studio starts
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"base_url": "http://alice:hunter2@127.0.0.1:abc/v1?token=abc"}), encoding="utf-8")
    at = home()
    assert not at.success
    warning = " ".join(w.value for w in at.warning)
    assert "`http://127.0.0.1:abc/v1` is not usable" in warning and "port must be a number" in warning
    assert "Settings page" in warning
    shown = everything_shown(at)
    for secret in ("hunter2", "alice", "token=abc"):
        assert secret not in shown
    at.run()  # and on every later visit
    assert not at.exception, at.exception
