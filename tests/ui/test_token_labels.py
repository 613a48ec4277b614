"""Token counts the endpoint did not send are labelled estimated on the Run and History pages, and the tokens
of tries the server cut off are shown apart (a real run against the local OpenAI-compatible server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.events import Event
from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer, TextReply
from ui.nav import RUN_ID
from ui.status import RunView

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ASK = {
    "format": "workflow/v1",
    "name": "Counted",
    "inputs": {"q": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "agent", "config": {"prompt": "{{ inputs.q }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.ask.output }}"}},
    ],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}],
}


def _page(run_id: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[RUN_ID] = run_id
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _submit(runtime: Runtime, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "fake-model")
    run_id = runtime.submit(ASK, {"q": "the answer?"})
    info = runtime.wait(run_id, timeout=30)
    assert info is not None and info.status == "completed", info
    runtime.store.flush()
    return run_id


@pytest.mark.parametrize("page", ["run", "history"])
def test_estimated_counts_and_failed_tries_are_labelled(
    runtime: Runtime, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    fake_openai.enqueue(TextReply("Forty", finish=False), TextReply("Forty-two, all of it.", usage=False))
    run_id = _submit(runtime, fake_openai, monkeypatch)
    at = _page(run_id, page)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Total tokens (estimated)"].startswith("~")
    assert "Total tokens" not in metrics
    captions = " ".join(c.value for c in at.caption)
    assert "Estimated counts" in captions
    assert "went to tries that failed" in captions
    if page == "history":
        (shown,) = list(at.dataframe(key="history_table").value["tokens"])
        assert shown.startswith("~") and "estimated" in shown and "in failed tries" in shown


def test_counts_the_server_sent_are_not_labelled(
    runtime: Runtime, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.enqueue(TextReply("Forty-two."))
    run_id = _submit(runtime, fake_openai, monkeypatch)
    at = _page(run_id, "run")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Total tokens"].replace(",", "")) > 0
    assert not any("Estimated counts" in c.value or "failed" in c.value for c in at.caption)


def test_a_failed_try_voids_its_streamed_text() -> None:
    def token(seq: int, delta: str) -> Event:
        return Event(seq, "r", 0.0, "llm.token", "bot", {"delta": delta, "step": 0, "attempt": 1})

    failed = Event(3, "r", 0.0, "llm.completed", "bot", {"model": "m", "prompt_tokens": 5, "completion_tokens": 2,
                                                          "estimated": True, "step": 0, "attempt": 1, "failed": True,
                                                          "error": "cut off", "retrying": True})  # fmt: skip
    view = RunView()
    view.apply([token(1, "Paris "), token(2, "has"), failed])
    view.apply([token(4, "Paris has two million.")])
    assert view.tokens["bot"] == "Paris has two million."
    assert view.usage.failed_tokens == 7 and view.usage.estimated
