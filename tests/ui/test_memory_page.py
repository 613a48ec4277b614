"""The Memory page: agents, search with scores, provenance, edit/delete/clear, adding by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from memory import MemoryManager, reset_default_backends

PAGE = str(Path(__file__).resolve().parents[2] / "views" / "memory.py")


@pytest.fixture(autouse=True)
def _fresh_backends() -> None:
    reset_default_backends()


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_empty_memory_says_how_to_start() -> None:
    at = _page()
    assert any("No agent has memories yet" in i.value for i in at.info)


def test_agents_search_and_provenance() -> None:
    manager = MemoryManager("page-agent")
    manager.add_interaction("My name is Alice.", "Nice to meet you, Alice.", run_id="run123456789", node_id="chat", workflow="Memory chat")
    manager.add_memory("The user's cat is called Miso.", "fact")
    at = _page()
    assert at.selectbox(key="memory_agent").value == "page-agent"
    assert at.dataframe, "the agents table is shown"
    shown = [t.value for t in at.text]
    assert any("Miso" in t for t in shown) and any("Alice" in t for t in shown)
    assert any("node: chat" in c.value for c in at.caption)
    at.text_input(key="memory_query").input("what is my pet's name")
    [b for b in at.button if b.label == "Search"][0].click().run()
    assert not at.exception
    frame = at.dataframe[-1].value
    assert frame.iloc[0]["memory"].startswith("The user's cat") and 0 < frame.iloc[0]["score"] <= 1


def test_hostile_memory_text_is_shown_as_text() -> None:
    MemoryManager("page-xss").add_memory("<img src=x onerror=alert(1)> <script>alert(2)</script> ![x](http://127.0.0.1:9/x.png)")
    at = _page()
    assert any("<script>alert(2)</script>" in t.value for t in at.text)
    assert not any("<script>" in m.value for m in at.markdown)


def test_delete_and_clear_need_no_code() -> None:
    manager = MemoryManager("page-del")
    manager.add_memory("first fact")
    manager.add_memory("second fact")
    at = _page()
    delete = [b for b in at.button if b.label == "Delete"][0]
    delete.click().run()
    assert manager.count() == 1
    clear = at.button(key="memory_clear")
    assert clear.disabled, "clearing needs the agent id typed first"
    at.text_input(key="memory_clear_confirm").input("page-del").run()
    at.button(key="memory_clear").click().run()
    assert manager.count() == 0


def test_add_a_memory_by_hand() -> None:
    at = _page()
    at.text_input(key="memory_add_agent").input("by-hand")
    at.text_area(key="memory_add_text").input("Prefers short answers.")
    [b for b in at.button if b.label == "Add memory"][0].click().run()
    assert not at.exception
    assert MemoryManager("by-hand").count() == 1
