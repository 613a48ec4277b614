"""The dashboard's entry point loads and says which model answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_home_lists_examples_and_says_offline() -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("offline model" in w.value for w in at.warning)
    shown = " ".join(m.value for m in at.markdown)
    assert "Calculator agent" in shown and "Write and critique" in shown


def test_home_says_when_an_endpoint_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("OpenAI-compatible endpoint" in s.value for s in at.success)
