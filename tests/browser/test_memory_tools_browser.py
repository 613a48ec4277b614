"""Memory (find what an agent saved by semantic search) and Tools (call the calculator) in a real browser."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.studio import choose, open_page, wait_idle
from tests.browser.test_run_browser import run_from_home, wait_completed

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow


def table_rows(frame: Any) -> list[dict[str, str]]:
    """The rows of an ``st.dataframe`` (from the grid's accessible table), as header -> cell text."""
    table = frame.locator("table").first
    headers = [h.strip() for h in table.locator("thead th").all_text_contents()]
    rows = []
    for row in table.locator("tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_text_contents()]
        rows.append(dict(zip(headers, cells, strict=False)))  # a short row keeps the cells it has
    return rows


def test_memory_saved_by_a_run_is_found_by_semantic_search(page: Any, studio: Any, screenshots: Any) -> None:
    run_id = run_from_home(page, studio, "memory_chat")
    wait_completed(page, 3)

    open_page(page, studio, "memory", "Memory")
    choose(page, "Agent", "assistant-alice")
    wait_idle(page)
    page.get_by_label("Query").fill("What is the user's name?")
    page.locator("[data-testid='stForm']").get_by_role("button", name="Search").click()
    results = page.locator("[data-testid='stDataFrame']").filter(has_text="distance")
    expect(results).to_contain_text("Alice")
    expect(page.get_by_text("score (cosine similarity)")).to_be_visible()  # the chart's axis
    wait_idle(page)

    rows = table_rows(results)
    hit = next(r for r in rows if "My name is Alice" in r.get("memory", ""))
    assert 0.0 < float(hit["score"]) <= 1.0, hit
    assert hit["rank"] == "1", rows
    assert hit["run"] == run_id, hit  # provenance: the run that saved it
    screenshots.save(page, "memory", readme=True)


def test_tools_page_calls_the_calculator(page: Any, studio: Any) -> None:
    open_page(page, studio, "tools", "Tools")
    choose(page, "Tool", "calculator")
    expect(page.get_by_role("heading", name="calculator")).to_be_visible()
    field = page.get_by_role("textbox", name=re.compile(r"^expression"))  # a form field from the schema
    field.fill("6 * 7")
    page.get_by_role("button", name="Call the tool").click()
    expect(page.get_by_text("Result", exact=True)).to_be_visible()
    expect(page.locator("[data-testid='stCode']").last).to_have_text("42")
    expect(page.get_by_text("Duration")).to_be_visible()
    field.fill("1/0")
    page.get_by_role("button", name="Call the tool").click()
    error = page.locator("[data-testid='stAlertContentError']").filter(has_text="reported an error")
    expect(error).to_be_visible()  # in red, with the tool's own words below it
    expect(page.locator("[data-testid='stCode']").filter(has_text="zero")).to_be_visible()
    choose(page, "Tool", "python")
    expect(
        page.frame_locator("iframe[title='streamlit_ace.streamlit_ace']").last.locator(".ace_editor")
    ).to_be_visible()  # a code editor
    choose(page, "Tool", "calculator")
    expect(page.get_by_role("textbox", name=re.compile(r"^expression"))).to_have_value("1/0")  # remembered
