"""The Builder's canvas has room (issue 13): whole graphs fit, the view stays where the user put it,
new nodes show up inside it, and icons and side-panel fields render in Debian's Chromium, which has
no emoji font."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from engine.model import NodeType
from tests.browser.studio import (
    FLOW_IFRAME,
    branch_workflow,
    chain_workflow,
    click_palette,
    flow,
    flow_node,
    import_in_builder,
    open_page,
    settle,
    stable_box,
)

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

# Emoji and pictographs (and the variation selector that turns a symbol into one): what needs an emoji font.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")

# Every node's box and the canvas pane, in the canvas iframe's own coordinates.
BOXES_JS = """() => {
    const pane = document.querySelector('.react-flow').getBoundingClientRect();
    return {
        pane: {x: pane.x, y: pane.y, width: pane.width, height: pane.height},
        transform: document.querySelector('.react-flow__viewport').style.transform,
        nodes: [...document.querySelectorAll('.react-flow__node')].map(n => {
            const b = n.getBoundingClientRect();
            return {id: n.dataset.id, x: b.x, y: b.y, width: b.width, height: b.height};
        }),
    };
}"""


def canvas_state(page: Any) -> dict[str, Any]:
    return flow(page).locator("body").evaluate(BOXES_JS)


def outside(state: dict[str, Any]) -> list[str]:
    pane = state["pane"]
    return [
        n["id"]
        for n in state["nodes"]
        if n["x"] < pane["x"] - 0.5
        or n["y"] < pane["y"] - 0.5
        or n["x"] + n["width"] > pane["x"] + pane["width"] + 0.5
        or n["y"] + n["height"] > pane["y"] + pane["height"] + 0.5
    ]


def open_document(page: Any, studio: Any, tmp_path: Path, document: dict[str, Any]) -> None:
    open_page(page, studio, "builder", "Inspector")
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    import_in_builder(page, path)
    expect(page.get_by_role("heading", name=document["name"])).to_be_visible()
    page.keyboard.press("Escape")  # close the popover
    expect(flow(page).locator(".react-flow__node")).to_have_count(len(document["nodes"]))
    settle(page)
    stable_box(flow(page).locator(".react-flow__viewport"))


def wait_all_inside(page: Any, timeout_ms: int = 10_000) -> dict[str, Any]:
    deadline = page.evaluate("() => performance.now()") + timeout_ms
    while True:
        state = canvas_state(page)
        if not outside(state) or page.evaluate("() => performance.now()") > deadline:
            return state
        page.wait_for_timeout(100)


def test_seven_nodes_fit_readably_and_the_canvas_takes_the_width(page: Any, studio: Any, tmp_path: Path) -> None:
    document = branch_workflow("Seven nodes")
    open_document(page, studio, tmp_path, document)
    state = wait_all_inside(page)
    assert not outside(state), f"nodes outside the canvas: {outside(state)} ({state})"
    assert len(state["nodes"]) == 7
    narrow = [n["id"] for n in state["nodes"] if n["width"] < 60]
    assert not narrow, f"nodes under 60 px wide: {narrow} ({state})"
    expect(flow(page).locator(".react-flow__minimap")).to_be_visible()

    # hiding the side panel gives the canvas at least 70 % of the 1400 px window, and it is fitted again
    page.get_by_text("Side panel", exact=True).click()
    page.wait_for_function(
        f'() => [...document.querySelectorAll("{FLOW_IFRAME}")]'
        ".some(f => f.getBoundingClientRect().width >= 0.7 * 1400)"
    )
    expect(flow(page).locator(".react-flow__node")).to_have_count(7)
    settle(page)
    frame = page.locator(FLOW_IFRAME).last.bounding_box()
    assert frame is not None and frame["width"] >= 0.7 * 1400, frame
    stable_box(flow(page).locator(".react-flow__viewport"))
    wide = wait_all_inside(page)
    assert not outside(wide), f"nodes outside the wider canvas: {outside(wide)}"
    assert min(n["width"] for n in wide["nodes"]) > min(n["width"] for n in state["nodes"]), "refitted, bigger"


def test_eighty_nodes_all_fit_in_the_view(page: Any, studio: Any, tmp_path: Path) -> None:
    document = chain_workflow("Eighty nodes", 78)
    open_document(page, studio, tmp_path, document)
    state = wait_all_inside(page)
    assert len(state["nodes"]) == 80
    assert not outside(state), f"{len(outside(state))} of 80 nodes outside the canvas: {outside(state)[:10]}"
    expect(flow(page).locator(".react-flow__minimap")).to_be_visible()


def test_pan_and_zoom_survive_a_redraw(page: Any, studio: Any, tmp_path: Path) -> None:
    open_document(page, studio, tmp_path, branch_workflow("Keep my view"))
    flow_node(page, "draft").click()
    expect(page.get_by_role("heading", name="Draft")).to_be_visible()
    settle(page)
    # zoom in twice and pan: the view is now the user's, not the fitted one
    fitted = canvas_state(page)["transform"]
    flow(page).locator(".react-flow__controls-zoomin").click()
    flow(page).locator(".react-flow__controls-zoomin").click()
    pane = page.locator(FLOW_IFRAME).last.bounding_box()
    assert pane is not None
    start = (pane["x"] + 40, pane["y"] + 40)  # an empty corner of the pane
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 120, start[1] + 60, steps=10)
    page.mouse.up()
    settle(page)
    mine = canvas_state(page)["transform"]
    assert mine != fitted

    # a change in the side panel redraws the canvas from Python (a rerun with a new state)
    label = page.get_by_role("textbox", name="Label", exact=True)
    label.fill("Draft two")
    label.press("Enter")
    expect(flow_node(page, "draft")).to_contain_text("Draft two")
    settle(page)
    assert canvas_state(page)["transform"] == mine, "the redraw kept the user's pan and zoom"


def test_a_node_added_from_the_palette_lands_inside_the_view(page: Any, studio: Any, tmp_path: Path) -> None:
    document = chain_workflow("Add at the end", 30)
    open_document(page, studio, tmp_path, document)
    # select the last step (the new node is wired after it), then zoom in on the start of the chain
    page.get_by_role("combobox", name="Or pick a node").click()
    page.keyboard.type("n030")
    page.get_by_role("option", name="n030", exact=True).click()
    expect(page.get_by_role("heading", name="Step 30")).to_be_visible()
    settle(page)
    for _ in range(3):
        flow(page).locator(".react-flow__controls-zoomin").click()
    settle(page)
    click_palette(page, "transform")
    added = flow_node(page, "transform_1")
    expect(added).to_be_visible()
    settle(page)
    stable_box(flow(page).locator(".react-flow__viewport"))
    state = canvas_state(page)
    assert "transform_1" not in outside(state), f"the new node is outside the view: {state}"
    assert any(n["id"] == "transform_1" for n in state["nodes"])


def test_icons_and_labels_render_without_an_emoji_font(page: Any, studio: Any, tmp_path: Path) -> None:
    document = branch_workflow("Icons")
    document["inputs"]["count"] = {"type": "integer", "description": "how many", "default": 3}
    open_document(page, studio, tmp_path, document)

    palette = page.locator("button[data-node-type]:visible")
    expect(palette).to_have_count(len(get_args(NodeType)))  # one button per node type
    for i in range(len(get_args(NodeType))):
        button = palette.nth(i)
        name = button.evaluate("b => b.title + ' ' + b.innerText")
        assert not EMOJI.search(name), f"emoji in the palette: {name!r}"
        # the icon is a glyph of Streamlit's icon font (one square), not its ligature name spelled out
        icon = button.locator(".icon").bounding_box()
        assert icon is not None and icon["width"] <= 1.5 * icon["height"], (name, icon)
    canvas_text = flow(page).locator(".react-flow").inner_text()
    assert not EMOJI.search(canvas_text), f"emoji on the canvas: {canvas_text!r}"
    assert flow(page).locator("body").evaluate("() => document.fonts.check('16px bootstrap-icons')")
    assert flow(page).locator(".react-flow__node i.bi").count() == 7

    flow_node(page, "draft").click()
    heading = page.get_by_role("heading", name="Draft")
    expect(heading).to_be_visible()
    assert not EMOJI.search(heading.inner_text())
    settle(page)
    side = page.locator("[data-testid='stMain']").inner_text()
    assert not EMOJI.search(side), f"emoji on the page: {EMOJI.findall(side)}"


def test_side_panel_fields_show_their_whole_label_and_value(page: Any, studio: Any, tmp_path: Path) -> None:
    document = branch_workflow("Side panel")
    document["inputs"]["count"] = {"type": "integer", "description": "how many", "default": 3}
    open_document(page, studio, tmp_path, document)
    page.locator("[data-testid='stExpander']").filter(has_text="Inputs (2)").click()
    expect(page.get_by_role("combobox", name="Type").first).to_be_visible()
    shown = assert_nothing_cut(page)
    assert {"string", "integer", "Required", "Type"} <= shown, shown

    # an agent's form, with its retry settings open (three fields in a row)
    flow_node(page, "draft").click()
    expect(page.get_by_role("heading", name="Draft")).to_be_visible()
    settle(page)
    page.locator("[data-testid='stExpander']").filter(has_text="Retry and timeout").click()
    expect(page.get_by_text("Backoff (s)")).to_be_visible()
    shown = assert_nothing_cut(page)
    assert {"Model", "Temperature", "Max tool steps", "Attempts", "Backoff (s)"} <= shown, shown


def assert_nothing_cut(page: Any) -> set[str]:
    """No widget label or select-box value on the page is cut (its text wider than its box)."""
    values = page.locator("[data-testid='stMain']").evaluate(
        """main => [...main.querySelectorAll("[data-testid='stWidgetLabel'] p, [data-testid='stSelectbox'] input")]
            .filter(e => e.offsetParent !== null)
            .map(e => ({text: e.value || e.innerText, scroll: e.scrollWidth, client: e.clientWidth}))"""
    )
    cut = [v for v in values if v["text"] and v["scroll"] > v["client"] + 1]
    assert not cut, f"cut in the side panel: {cut}"
    return {v["text"] for v in values}
