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
    manager.add_interaction(
        "My name is Alice.", "Nice to meet you, Alice.", run_id="run123456789", node_id="chat", workflow="Memory chat"
    )
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
    MemoryManager("page-xss").add_memory(
        "<img src=x onerror=alert(1)> <script>alert(2)</script> ![x](http://127.0.0.1:9/x.png)"
    )
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


def test_memories_saved_with_another_embedder_show_an_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = MemoryManager("switched")
    manager.add_interaction("My name is Alice.", "Hello Alice.", run_id="run123456789")
    manager.add_memory("The user's cat is called Miso.")
    # The Settings page switches embeddings to the endpoint's: the collection still records MiniLM.
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never reached: the mismatch is found first
    at = _page()
    errors = " ".join(e.value for e in at.error)
    assert "saved with another embedding model" in errors and "Settings page" in errors, errors
    assert "Clear" in errors and "**switched**" in errors and "back to **offline**" in errors
    assert any("Alice" in t.value for t in at.text), "the recent turns (no embedder needed) still show"
    at.text_input(key="memory_query").input("what is my pet's name")
    next(b for b in at.button if b.label == "Search").click().run()
    assert not at.exception, at.exception
    assert any("Could not search" in e.value and "Settings page" in e.value for e in at.error)
    # The advice holds: clearing works although the memories were saved with the other model.
    at.text_input(key="memory_clear_confirm").input("switched").run()
    at.button(key="memory_clear").click().run()
    assert not at.exception, at.exception
    assert any("Cleared 2 memories and 1 turns" in s.value for s in at.success), [s.value for s in at.success]
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "local")
    assert MemoryManager("switched").count() == 0


def test_memory_errors_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from memory import MemoryUnavailable
    from memory.long_term import LongTermStore

    MemoryManager("page-err").add_memory("a fact")

    def down(*_: object, **__: object) -> None:
        raise MemoryUnavailable("chroma at ![x](http://127.0.0.1:9/x.png) is down")

    monkeypatch.setattr(LongTermStore, "query", down)
    monkeypatch.setattr(LongTermStore, "delete", down)
    at = _page()
    at.text_input(key="memory_query").input("anything")
    next(b for b in at.button if b.label == "Search").click().run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.error]
    assert any(
        "Could not search the memories" in e and "\\!\\[x\\]\\(`http://127.0.0.1:9/x.png`" in e for e in shown
    ), shown
    assert not any("![x](" in e for e in shown)
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception, at.exception
    assert any("Could not delete the memory" in e.value and "\\!\\[x\\]" in e.value for e in at.error)
    assert MemoryManager("page-err").count() == 1


def test_user_and_store_text_in_markdown_is_escaped() -> None:
    hostile_run = "![x](http://127.0.0.1:9/x.png)"
    MemoryManager("page-md").add_interaction("hi", "hello", run_id=hostile_run)
    at = _page()
    labels = [b.label for b in at.button if b.label.startswith("Run ")]
    assert labels == ["Run \\!\\[x\\]\\(htt…"], labels
    captions = [c.value for c in at.caption]
    assert any("run \\!\\[x\\]\\(htt…" in c for c in captions), captions
    assert any("kind: interaction" in c for c in captions)
    assert not any("![x](" in c for c in captions)
    at.text_input(key="memory_add_agent").input("_evil_ ![y](http://127.0.0.1:9/y.png)")
    at.text_area(key="memory_add_text").input("Prefers short answers.")
    next(b for b in at.button if b.label == "Add memory").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Saved for \\_evil\\_ \\!\\[y\\]\\(`http://127.0.0.1:9/y.png`\\)."]


def test_what_was_done_before_a_rerun_is_still_said() -> None:
    manager = MemoryManager("page-flash")
    manager.add_memory("first fact")
    manager.add_memory("second fact")
    at = _page()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Memory deleted."]
    at.text_input(key="memory_clear_confirm").input("page-flash").run()
    assert not at.success, "the message is shown once"
    at.button(key="memory_clear").click().run()
    assert [s.value for s in at.success] == ["Cleared 1 memories and 0 turns of **page\\-flash**."]
    assert manager.count() == 0
    at.run()
    assert not at.success
