"""Estimated cost on the Run and History pages, from the prices saved on Settings (tokens from a real
run against the local OpenAI-compatible server)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import settings as user_settings
from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer
from ui.nav import RUN_ID

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ECHO = {
    "format": "workflow/v1",
    "name": "Priced",
    "inputs": {"q": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "agent", "config": {"prompt": "{{ inputs.q }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.ask.output }}"}},
    ],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}],
}


def _run_page(run_id: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[RUN_ID] = run_id
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _cost(at: AppTest) -> str:
    return next(m.value for m in at.metric if m.label == "Estimated cost")


@pytest.fixture
def priced_run(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, runtime: Runtime) -> str:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "fake-model")
    fake_openai.enqueue_text("Forty-two.")
    run_id = runtime.submit(ECHO, {"q": "the answer?"})
    info = runtime.wait(run_id, timeout=30)
    assert info is not None and info.status == "completed", info
    return run_id


def _settings_file() -> Path:
    return Path(os.environ["DATA_DIR"]).resolve() / "settings.json"


@pytest.mark.parametrize("page", ["run", "history"])
def test_cost_is_shown_for_priced_models_and_unpriced_ones_are_named(
    priced_run: str, page: str, runtime: Runtime
) -> None:
    at = _run_page(priced_run, page)
    assert _cost(at) == "—"
    assert any("No price set for fake-model" in c.value.replace("\\", "") for c in at.caption)  # md-escaped
    # The fake server reports usage; price it at $1,000,000 per million tokens = $1 per token, so the cost is
    # the token total, which the page shows too.
    settings = runtime.settings  # what the Settings page's Save prices does: the file, then the runtime's settings
    priced = dataclasses.replace(settings.saved, prices={"fake-model": {"input": 1e6, "output": 1e6}})
    user_settings.save(priced, settings.settings_file)
    runtime.update_settings(settings.with_saved(priced, keep=tuple(user_settings.ENV_VARIABLES)))
    at = _run_page(priced_run, page)
    total = next(m.value for m in at.metric if m.label == "Total tokens").replace(",", "")
    assert int(total) > 0
    assert _cost(at) == f"${int(total):,.2f}"
    assert not any("No price set" in c.value for c in at.caption)


def test_offline_runs_cost_nothing(runtime: Runtime) -> None:
    run_id = runtime.submit(ECHO, {"q": "hello"})
    assert runtime.wait(run_id, timeout=30).status == "completed"
    at = _run_page(run_id, "run")
    assert _cost(at) == "$0"


def test_settings_page_saves_prices_and_keeps_them_with_the_other_settings() -> None:
    # saved before the studio starts
    user_settings.save(user_settings.Settings(prices={"gpt-4o-mini": {"input": 0.15, "output": 0.6}}), _settings_file())
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/settings.py").run()
    assert not at.exception, at.exception
    # the endpoint form's Save keeps the prices
    next(b for b in at.button if b.label == "Save settings").click().run()
    assert user_settings.load(_settings_file()).prices == {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}


def _save_prices(at: AppTest, added: list[dict[str, object]]) -> AppTest:
    """What the data editor sends when rows are added (its widget state), then Save prices."""
    at.session_state["settings_prices"] = {"edited_rows": {}, "added_rows": added, "deleted_rows": []}
    next(b for b in at.button if b.label == "Save prices").click().run()
    assert not at.exception, at.exception
    return at


def test_prices_are_added_in_the_editor_and_bad_rows_listed_without_saving() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/settings.py").run()
    _save_prices(at, [{"model": "gpt-4o-mini", "input": 0.15, "output": 0.6}])
    assert any("Saved prices for 1 model(s)" in s.value for s in at.success)
    assert user_settings.load(_settings_file()).prices == {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
    _save_prices(at, [{"model": "", "input": 1.0, "output": 1.0}, {"model": "half", "input": 2.0}])
    errors = " ".join(e.value for e in at.error)
    assert "Nothing was saved" in errors and "row 2: the model name is missing" in errors and "half" in errors
    assert user_settings.load(_settings_file()).prices == {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
