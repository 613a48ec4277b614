"""The Builder in a real browser: an example's nodes on the canvas; add a node and connect it by dragging."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.studio import (
    ROOT,
    choose,
    click_button,
    click_palette,
    drag,
    flow,
    flow_node,
    import_in_builder,
    open_page,
    settle,
    wait_idle,
)

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

TRIAGE = json.loads((ROOT / "examples" / "triage_branch.json").read_text(encoding="utf-8"))


def open_builder(page: Any, studio: Any) -> None:
    open_page(page, studio, "builder", "Inspector")
    expect(flow(page).locator(".react-flow__node").first).to_be_visible()
    settle(page)  # the canvas reports back (and reruns the page) right after it is drawn


def test_opening_an_example_shows_every_node_on_the_canvas(page: Any, studio: Any, screenshots: Any) -> None:
    open_builder(page, studio)
    page.locator("[data-testid='stPopover']").filter(has_text="Open").locator("button").first.click()
    choose(page, "Saved workflows and examples", "Example · Ticket triage")
    click_button(page, "builder_open")
    expect(page.get_by_role("heading", name="Ticket triage")).to_be_visible()
    page.keyboard.press("Escape")  # close the popover

    for node in TRIAGE["nodes"]:
        drawn = flow_node(page, node["id"])
        expect(drawn).to_be_visible()
        expect(drawn).to_contain_text(node.get("label") or node["id"])
    expect(flow(page).locator(".react-flow__node")).to_have_count(len(TRIAGE["nodes"]))
    expect(flow(page).locator(".react-flow__edge")).to_have_count(len(TRIAGE["edges"]))
    expect(
        page.get_by_text(f"Valid — {len(TRIAGE['nodes'])} nodes, {len(TRIAGE['edges'])} edges. Ready to run.")
    ).to_be_visible()

    # clicking a node opens its form in the side panel
    settle(page)
    flow_node(page, "reply").click()
    expect(page.get_by_role("heading", name="Draft reply")).to_be_visible()
    expect(page.get_by_text("agent node", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Prompt", exact=True)).to_have_value(re.compile(r"support ticket"))
    wait_idle(page)
    screenshots.save(page, "builder", readme=True)


def test_quick_palette_clicks_each_add_a_node(page: Any, studio: Any) -> None:
    """Clicks of one Streamlit button that reach the server before its rerun starts count once; the palette
    sends a click log instead, so clicks with no pause between them (a few ms here) each add a node."""
    open_builder(page, studio)
    expect(page.get_by_text("Valid — 2 nodes, 1 edges. Ready to run.")).to_be_visible()
    settle(page)
    button = page.locator("button[data-node-type='transform']:visible").first
    for _ in range(3):
        button.click(delay=0, no_wait_after=True)
    for node_id in ("transform_1", "transform_2", "transform_3"):
        expect(flow_node(page, node_id)).to_be_visible(timeout=15_000)
    settle(page)
    expect(flow(page).locator(".react-flow__node")).to_have_count(5)


def test_palette_buttons_are_updated_in_place_so_a_click_straddling_a_rerun_counts(page: Any, studio: Any) -> None:
    """A rerun that redraws the palette (its help text names the selected node) keeps the same button
    elements: a button replaced between a click's mousedown and mouseup gets no click (seen on a loaded host)."""
    open_builder(page, studio)
    settle(page)
    button = page.locator("button[data-node-type='transform']:visible").first
    handle = button.element_handle()
    flow_node(page, "start").click()
    expect(button).to_have_attribute("title", re.compile("wired after .start."))
    settle(page)
    assert handle.evaluate("b => b.isConnected"), "the palette's buttons were replaced by a rerun"
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    flow_node(page, "result").dispatch_event("click")  # a rerun between mousedown and mouseup
    expect(button).to_have_attribute("title", re.compile("Add a transform node$"))
    moved = handle.bounding_box()
    assert (moved["x"], moved["y"]) == (box["x"], box["y"]), "the palette moved under the pointer"
    page.mouse.up()
    expect(flow_node(page, "transform_1")).to_be_visible()


def test_add_a_node_from_the_palette_and_connect_it_by_dragging(page: Any, studio: Any) -> None:
    open_builder(page, studio)
    expect(page.get_by_text("Valid — 2 nodes, 1 edges. Ready to run.")).to_be_visible()

    click_palette(page, "transform")
    added = flow_node(page, "transform_1")
    expect(added).to_be_visible()
    expect(added).to_contain_text("Transform")
    # not wired yet: validation lists the problem and the node is outlined in red
    expect(page.get_by_text("node 'transform_1'")).to_be_visible()
    expect(page.get_by_text("is not reachable from the input node")).to_be_visible()
    expect(page.locator("span.stMarkdownBadge", has_text=re.compile(r"^1 problem$"))).to_be_visible()  # header badge
    expect(added).to_have_attribute("style", re.compile(r"dashed"))
    settle(page)

    drag(
        page,
        flow_node(page, "start").locator(".react-flow__handle.source"),
        added.locator(".react-flow__handle.target"),
    )
    expect(flow(page).locator("[data-testid='rf__edge-start->transform_1']")).to_have_count(1)
    expect(flow(page).locator(".react-flow__edge")).to_have_count(2)
    expect(page.get_by_text("Valid — 3 nodes, 2 edges. Ready to run.")).to_be_visible()
    expect(page.locator("span.stMarkdownBadge", has_text=re.compile(r"^valid$"))).to_be_visible()
    expect(page.get_by_text("is not reachable from the input node")).to_have_count(0)
    expect(flow_node(page, "transform_1")).not_to_have_attribute("style", re.compile(r"dashed"))
    expect(page.locator("span.stMarkdownBadge", has_text=re.compile(r"^unsaved changes$"))).to_be_visible()


def test_a_failed_import_stays_until_dismissed(page: Any, studio: Any, tmp_path: Any) -> None:
    """The canvas reruns the page after every redraw; a one-shot message was gone after about a second."""
    open_builder(page, studio)
    bad = tmp_path / "broken.json"
    bad.write_text("{oops", encoding="utf-8")
    import_in_builder(page, bad)
    message = page.locator("[data-testid='stAlertContentError']").filter(has_text="is not valid JSON")
    expect(message).to_be_visible()
    expect(message).to_contain_text("broken.json")
    page.keyboard.press("Escape")  # close the Open popover
    page.wait_for_timeout(3000)
    settle(page)
    expect(message).to_be_visible()
    click_button(page, "builder_open_error_close")
    expect(message).to_have_count(0)
    settle(page)
    expect(message).to_have_count(0)
