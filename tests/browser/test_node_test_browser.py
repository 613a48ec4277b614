"""Builder → "Test node" in a real browser (issue 14 §4): after a run, select a node, click Test node,
read its output in the side panel; no new run appears. Clicks are counted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import (
    branch_workflow,
    click_button,
    flow_node,
    import_in_builder,
    open_page,
    settle,
    start_run_in_builder,
    wait_idle,
)

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow


def test_select_a_node_test_it_and_see_its_output_in_place(
    page: Any, studio: Any, screenshots: Any, tmp_path: Path
) -> None:
    doc = branch_workflow("Test node in the browser")
    doc["nodes"][3]["config"] = {"template": "TRIMMED: {{ nodes.draft.output[:20] }}"}
    path = tmp_path / "test-node.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    open_page(page, studio, "builder", "Inspector")
    import_in_builder(page, path)
    expect(page.get_by_role("heading", name="Test node in the browser")).to_be_visible()
    run_id = start_run_in_builder(page)
    expect(page.get_by_text("completed", exact=False).first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(5_500)  # within ui.nav.PENDING_S of a start, the Builder hands over to the Run page
    wait_idle(page)
    page.locator("[data-testid='stSidebarNav'] a[href$='/builder']").click()  # back to the open workflow (same session)
    expect(page).to_have_url(re.compile(r"/builder"))
    expect(page.get_by_role("heading", name="Inspector")).to_be_visible()
    expect(flow_node(page, "trim")).to_be_visible()
    settle(page)

    clicks = 0
    flow_node(page, "trim").click()
    clicks += 1
    expect(page.get_by_role("heading", name="Trim")).to_be_visible()
    # trim was skipped in that run (the draft was short): its inputs come from that run all the same
    expect(page.get_by_text(re.compile(r"inputs of run " + run_id[:8] + r" .*it did not run there"))).to_be_visible()
    click_button(page, "builder_test_node")
    clicks += 1
    result = page.locator(".st-key-builder_test_result")
    expect(result.get_by_text(re.compile(r"^Output · [\d.]+ m?s"))).to_be_visible(timeout=30_000)
    expect(result.locator("[data-testid='stCode']")).to_contain_text("TRIMMED: ")
    assert clicks == 2
    wait_idle(page)
    page.screenshot(path=str(tmp_path / "test-node.png"))
    screenshots.save(page, "builder-test-node")

    # edit the inputs and test again: the edit reaches the template; a failure shows in red
    page.get_by_text("Test inputs", exact=True).click()
    area = page.get_by_role("textbox", name=re.compile("Inputs of the test"))
    area.fill(json.dumps({"nodes": {"draft": "an edited draft"}}))
    area.press("Control+Enter")
    wait_idle(page)
    click_button(page, "builder_test_node")
    expect(result.locator("[data-testid='stCode']")).to_contain_text("TRIMMED: an edited draft", timeout=30_000)
    area.fill(json.dumps({"nodes": {"draft": 42}}))
    area.press("Control+Enter")
    wait_idle(page)
    click_button(page, "builder_test_node")
    expect(result.get_by_text(re.compile(r"^Failed · "))).to_be_visible(timeout=30_000)
    expect(result.locator("[data-testid='stAlertContentError']")).to_be_visible()
    expect(result.locator("[data-testid='stCode']")).to_contain_text("not subscriptable")
    page.screenshot(path=str(tmp_path / "test-node-failed.png"))
    screenshots.save(page, "builder-test-node-failed")

    # an agent: one model call, its tokens in the result line
    settle(page)
    flow_node(page, "draft").click()
    expect(page.get_by_role("heading", name="Draft")).to_be_visible()
    click_button(page, "builder_test_node")
    expect(result.get_by_text(re.compile(r"^Output · .* tokens"))).to_be_visible(timeout=30_000)
    expect(result.locator("[data-testid='stCode']")).to_contain_text("Write about browser tests")
    wait_idle(page)
    page.screenshot(path=str(tmp_path / "test-node-agent.png"))
    screenshots.save(page, "builder-test-node-agent")

    # no run was added by the tests: History lists the one run
    open_page(page, studio, "history", "History", exact=False)
    expect(page.get_by_text("Test node in the browser")).to_have_count(1)


def test_a_slow_node_test_shows_its_time_and_can_be_cancelled(page: Any, studio: Any, tmp_path: Path) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "Slow node test",
        "nodes": [
            {"id": "start", "type": "input", "position": {"x": 0, "y": 0}},
            {"id": "slow", "type": "tool", "position": {"x": 240, "y": 0},
             "config": {"tool": "python", "args": {"code": "import time\ntime.sleep(8)\nprint('done')"}}},
            {"id": "result", "type": "output", "position": {"x": 480, "y": 0},
             "config": {"value": "{{ nodes.slow.output }}"}},
        ],
        "edges": [{"source": "start", "target": "slow"}, {"source": "slow", "target": "result"}],
    }  # fmt: skip
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    open_page(page, studio, "builder", "Inspector")
    import_in_builder(page, path)
    expect(page.get_by_role("heading", name="Slow node test")).to_be_visible()
    settle(page)
    flow_node(page, "slow").click()
    expect(page.get_by_text("tool node", exact=True)).to_be_visible()
    click_button(page, "builder_test_node")
    expect(page.get_by_text(re.compile(r"Testing… \d+\.\d s"))).to_be_visible(timeout=10_000)
    page.screenshot(path=str(tmp_path / "test-node-running.png"))
    click_button(page, "builder_test_cancel")
    result = page.locator(".st-key-builder_test_result")
    expect(result.get_by_text(re.compile(r"^Cancelled · "))).to_be_visible(
        timeout=6_000
    )  # long before the 8 s sleep ends
    expect(page.get_by_text(re.compile(r"Testing…"))).to_have_count(0)
