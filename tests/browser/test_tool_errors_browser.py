"""A failed tool call is drawn as an error (red) in a real browser: the Run page and the Tools page's "Try it"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.studio import choose, open_page, wait_idle
from tests.browser.test_code_editor_browser import code_editor, type_code
from tests.browser.test_run_browser import run_from_home, wait_completed

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

ERROR_ALERT = "[data-testid='stAlertContentError']"


def test_try_it_shows_python_code_that_raises_in_red(page: Any, studio: Any) -> None:
    open_page(page, studio, "tools", "Tools")
    choose(page, "Tool", "python")
    expect(page.get_by_role("heading", name="python")).to_be_visible()
    expect(code_editor(page).locator(".ace_editor")).to_be_visible()  # the form made from the schema: a code editor
    wait_idle(page)
    type_code(page, "print('half way')\n1 / 0")
    page.get_by_role("button", name="Call the tool").click()
    alert = page.locator(ERROR_ALERT).filter(has_text="the call failed")
    expect(alert).to_be_visible(timeout=30_000)
    error = "ZeroDivisionError: division by zero (line 2 of the code)"
    expect(page.locator("[data-testid='stCode']").filter(has_text=error)).to_be_visible()
    expect(page.get_by_text("Result", exact=True)).to_have_count(0)


def test_run_page_shows_an_agents_failed_call_in_red(page: Any, studio: Any) -> None:
    run_from_home(page, studio, "web_research")  # web search points at a closed port here: the call fails
    wait_completed(page, 3)  # the agent recovers: it says search is unavailable instead of failing
    page.get_by_role("tab", name="Tool calls").click()
    panel = page.get_by_role("tabpanel", name="Tool calls")
    expect(panel.locator(ERROR_ALERT).filter(has_text="Tool web_search failed in node researcher")).to_be_visible()
    expect(panel.locator("[data-testid='stCode']").filter(has_text="search unavailable")).to_be_visible()
    wait_idle(page)
