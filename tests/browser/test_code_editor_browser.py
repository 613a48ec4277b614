"""The Tools page's code editor (streamlit-ace) in a real browser: highlighted, fixed-width, Tab indents,
sent with the form, remembered per tool, and loaded without any request off the dashboard's host."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.studio import choose, click_button, flow_node, import_in_builder, open_page, settle, wait_idle

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

ACE_IFRAME = "iframe[title='streamlit_ace.streamlit_ace']"


def code_editor(page: Any) -> Any:
    """The Ace editor's frame (the newest one on the page)."""
    return page.frame_locator(ACE_IFRAME).last


def type_code(page: Any, text: str) -> None:
    """Replace the code editor's text with ``text`` as typed input (no auto-indent or auto-closing added)."""
    editor = code_editor(page)
    editor.locator(".ace_content").wait_for()
    editor.locator(".ace_text-input").focus()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    page.wait_for_timeout(400)  # streamlit-ace sends an edit 200 ms after the last keystroke (its debounce)


def editor_text(page: Any) -> str:
    lines = code_editor(page).locator(".ace_line").all_inner_texts()
    return "\n".join(lines)


def test_code_arguments_get_an_offline_code_editor(page: Any, studio: Any, tmp_path: Any) -> None:
    ace_requests: list[str] = []  # every request the editor's frame makes (the app's own favicon is not its doing)

    def seen(request: Any) -> None:
        try:
            frame_url = request.frame.url
        except Exception:  # noqa: BLE001 - a request of a service worker has no frame
            return
        if "streamlit_ace" in frame_url or "streamlit_ace" in request.url:
            ace_requests.append(request.url)

    page.on("request", seen)
    open_page(page, studio, "tools", "Tools")
    choose(page, "Tool", "python")
    expect(page.get_by_role("heading", name="python")).to_be_visible()
    wait_idle(page)
    editor = code_editor(page)
    expect(editor.locator(".ace_editor")).to_be_visible()
    font = editor.locator(".ace_editor").evaluate("el => getComputedStyle(el).fontFamily")
    assert "mono" in font.lower() or "courier" in font.lower() or "consolas" in font.lower(), font

    type_code(page, "def f():\n    return 6 * 7\n")
    page.keyboard.press("Tab")  # Tab indents inside the editor (focus stays in it)
    page.keyboard.insert_text("x = 1")
    assert editor.locator(".ace_text-input").evaluate("el => document.activeElement === el")
    expect(editor.locator(".ace_keyword").filter(has_text="def")).to_be_visible()  # highlighted
    assert re.search(r"^\s{4}x = 1$", editor_text(page), re.MULTILINE), editor_text(page)

    type_code(page, "print(6 * 7)")
    page.get_by_role("button", name="Call the tool").click()
    expect(page.get_by_text("Result", exact=True)).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid='stJson']").filter(has_text='"stdout"').filter(has_text="42")).to_be_visible()

    choose(page, "Tool", "calculator")
    expect(page.get_by_role("heading", name="calculator")).to_be_visible()
    choose(page, "Tool", "python")
    expect(code_editor(page).locator(".ace_line").first).to_have_text("print(6 * 7)")  # remembered per tool
    wait_idle(page)
    page.screenshot(path=str(tmp_path / "tools-code-editor.png"))
    assert any("streamlit_ace" in url and url.endswith(".js") for url in ace_requests), ace_requests
    off_host = [url for url in ace_requests if not url.startswith((studio.url, "data:", "blob:", "about:"))]
    assert off_host == [], off_host  # Ace, its modes and themes come from the package: works offline


def test_a_python_tool_node_edits_its_code_in_the_editor_and_tests_it(
    page: Any, studio: Any, tmp_path: Any, screenshots: Any
) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "Code node in the browser",
        "inputs": {"n": {"type": "integer", "default": 6}},
        "nodes": [
            {"id": "start", "type": "input", "position": {"x": 0, "y": 0}},
            {
                "id": "calc",
                "type": "tool",
                "position": {"x": 240, "y": 0},
                "config": {"tool": "python", "args": {"code": "print(1)"}},
            },
            {
                "id": "result",
                "type": "output",
                "position": {"x": 480, "y": 0},
                "config": {"value": "{{ nodes.calc.output }}"},
            },
        ],
        "edges": [{"source": "start", "target": "calc"}, {"source": "calc", "target": "result"}],
    }
    path = tmp_path / "code-node.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    open_page(page, studio, "builder", "Inspector")
    import_in_builder(page, path)
    expect(page.get_by_role("heading", name="Code node in the browser")).to_be_visible()
    settle(page)
    flow_node(page, "calc").click()
    expect(page.get_by_role("heading", name="calc")).to_be_visible()
    editor = code_editor(page)
    expect(editor.locator(".ace_line").first).to_have_text("print(1)")
    type_code(page, "print({{ inputs.n }} * 7)")
    page.keyboard.press("Control+Enter")  # Apply
    args = page.get_by_role("textbox", name=re.compile(r"^Arguments"))
    expect(args).to_have_value(re.compile(r'"code": "print\(\{\{ inputs.n \}\} \* 7\)"'), timeout=15_000)
    settle(page)
    click_button(page, "builder_test_node")
    result = page.locator(".st-key-builder_test_result")
    expect(result.get_by_text(re.compile(r"^Output · "))).to_be_visible(timeout=30_000)
    expect(result.locator("[data-testid='stJson']").first).to_contain_text("42")
    wait_idle(page)
    screenshots.save(page, "builder-code-node")
