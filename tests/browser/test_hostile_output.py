"""A model answer full of HTML, a script, a remote image and a javascript: link shows as text and runs nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import FAKE_KEY, HOSTILE
from tests.browser.studio import open_page
from tests.browser.test_run_browser import run_from_home, wait_completed

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

CLOSED = "http://127.0.0.1:9/"  # where the markdown image points; nothing may request it

FRAME_CHECK = """() => ({
    imgX: [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x').length,
    imgClosed: [...document.querySelectorAll('img')].filter(i => (i.src || '').startsWith('http://127.0.0.1:9/')).length,
    jsLinks: [...document.querySelectorAll('a[href]')]
        .filter(a => a.getAttribute('href').trim().toLowerCase().startsWith('javascript:')).length,
    alertScripts: [...document.querySelectorAll('script')].filter(s => /alert\\(/.test(s.textContent || '')).length,
    onerror: document.querySelectorAll('[onerror]').length,
})"""


def test_hostile_model_output_shows_literally_and_runs_nothing(
    page: Any, hostile_studio: Any, fake_endpoint: Any, screenshots: Any
) -> None:
    dialogs: list[str] = []
    requests: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.context.on("request", lambda request: requests.append(request.url))

    open_page(page, hostile_studio, "", "Workflow Studio")
    expect(page.get_by_text("OpenAI-compatible endpoint")).to_be_visible()
    run_from_home(page, hostile_studio, "calculator_agent")
    wait_completed(page, 3)
    assert fake_endpoint.requests, "the model endpoint was never asked"

    # the text shows as typed: in the streamed model output and in the result
    shown = page.locator("[data-testid='stText']").filter(has_text="<script>alert(2)</script>")
    expect(shown).to_have_count(2)
    for i in range(2):
        expect(shown.nth(i)).to_have_text(HOSTILE)
        expect(shown.nth(i)).to_be_visible()
    page.wait_for_timeout(1500)  # time for anything injected to load or fire

    for frame in page.frames:
        found = frame.evaluate(FRAME_CHECK)
        assert found == {"imgX": 0, "imgClosed": 0, "jsLinks": 0, "alertScripts": 0, "onerror": 0}, (frame.url, found)
        assert FAKE_KEY not in frame.content(), f"the API key is in the page ({frame.url})"
    assert dialogs == []
    assert [u for u in requests if u.startswith(CLOSED)] == []
    screenshots.save(page, "hostile")
