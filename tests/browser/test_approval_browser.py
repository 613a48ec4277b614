"""Deciding an approval from the Run page in a real browser (issue 19): reject with a comment, the agent
revises, approve; the run completes with the approved reply."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.studio import click_button, expect_tools_clear_of_nodes, open_page, wait_idle

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow


def test_reject_then_approve_from_the_run_page(page: Any, studio: Any, screenshots: Any) -> None:
    open_page(page, studio, "", "Workflow Studio")
    click_button(page, "home_run_approve_draft")
    expect(page).to_have_url(re.compile(r"/run\?run=[0-9a-f]{32}$"))
    expect(page.get_by_text("Waiting for you").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Send this reply to the customer?")).to_be_visible()
    expect(page.get_by_text(re.compile(r"of 4 · 1 waiting$"))).to_be_visible()  # the approval waits, not runs
    wait_idle(page)
    screenshots.save(page, "approval_waiting")
    page.get_by_label("Comment").fill("say the replacement ships today")
    page.get_by_role("button", name="reject", exact=True).click()  # click 1
    expect(page.get_by_text("Decided reject")).to_be_visible(timeout=30_000)
    # the agent revises; the page asks again (a new request, with the revised reply in the field)
    reply = page.get_by_label("reply")
    expect(reply).to_contain_text("Revised", timeout=60_000)  # the offline model says it revised
    reply.fill("Sorry about the lid! A replacement ships today.")
    page.get_by_role("button", name="approve", exact=True).click()  # click 2
    expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=60_000)
    result = page.get_by_role("tabpanel", name="Result")
    expect(result).to_contain_text("A replacement ships today.")
    expect_tools_clear_of_nodes(page)  # four nodes in a row: the last one is at the top right
    wait_idle(page)
    screenshots.save(page, "approval_completed")
