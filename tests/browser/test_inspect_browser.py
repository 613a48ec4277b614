"""Watch, inspect, rerun on the Run and History pages in a real browser (issue 14): the graph at once,
a click on any node shows its panel with its output, ``?run=&node=`` opens that panel, and Rerun from
here forks the run (the new run's reused nodes drawn as such, its source linked)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from engine.store import Store
from tests.browser.studio import (
    branch_workflow,
    run_graph_node,
    run_graph_nodes,
    settle,
    wait_idle,
)

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

SEVEN = 7
GRAPH_LIMIT_S = 5.0  # generous (the bench's figure is the real one: p95 ≤ 1 s)


def outputs_of(studio: Any, run_id: str) -> dict[str, Any]:
    """Each node's last stored output (and status) in ``run_id``, read from the studio's store."""
    store = Store(data_dir=studio.data_dir)
    try:
        deadline = time.monotonic() + 10
        while True:
            rows = store.node_executions(run_id)
            run = store.get_run(run_id)
            if (run is not None and run.status != "running") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return {r.node_id: (r.status, r.output) for r in rows}
    finally:
        store.close()


def shown(value: Any) -> str:
    """A piece of how the panel shows an output: text as typed, data by one of its keys or values."""
    if isinstance(value, str):
        return value[:40]
    if isinstance(value, dict):
        return next(iter(value))
    return json.dumps(value)[:20]


def start_seven(page: Any, studio: Any, name: str) -> tuple[str, float]:
    """The 7-node branch workflow saved, opened in the Builder and started; (run id, seconds to the graph)."""
    store = Store(data_dir=studio.data_dir)
    ref = store.save_workflow(branch_workflow(name))
    store.close()
    page.goto(f"{studio.url}/builder?workflow={ref.id}")
    page.get_by_role("heading", name=name).first.wait_for()
    settle(page)
    page.locator("[data-testid='stPopover']").filter(has_text="Run").locator("button").first.click()
    started = time.monotonic()
    page.get_by_role("button", name="Start run").click()
    expect(run_graph_nodes(page)).to_have_count(SEVEN, timeout=30_000)
    took = time.monotonic() - started
    return page.url.split("run=", 1)[1].split("&", 1)[0], took


def test_graph_at_once_each_node_type_shows_its_output_and_a_link_opens_a_panel(
    page: Any, studio: Any, screenshots: Any
) -> None:
    run_id, took = start_seven(page, studio, "Inspect seven")
    tries = [took]
    while min(tries) >= GRAPH_LIMIT_S and len(tries) < 3:  # best of up to three: the machine may be loaded
        run_id, took = start_seven(page, studio, f"Inspect seven {len(tries) + 1}")
        tries.append(took)
    assert min(tries) < GRAPH_LIMIT_S, f"the graph took {', '.join(f'{t:.2f}' for t in tries)} s after Start"
    expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=60_000)
    stored = outputs_of(studio, run_id)
    expect(run_graph_node(page, "draft")).to_have_attribute("data-status", "succeeded")
    wait_idle(page)
    screenshots.save(page, "run_graph")
    panel = page.locator(".st-key-run_node_panel")
    for node_id in ("start", "draft", "route", "trim", "keep", "join", "result"):  # input, agent, condition,
        run_graph_node(page, node_id).click()  # both branches (one skipped), join, output
        expect(panel).to_contain_text(f"node {node_id}", timeout=10_000)
        expect(page).to_have_url(re.compile(rf"[?&]node={node_id}(&|$)"))
        status, output = stored[node_id]
        if status == "skipped":
            expect(panel).to_contain_text("Skipped")
        else:
            expect(panel.get_by_text("Output", exact=True)).to_be_visible()
            expect(panel).to_contain_text(shown(output))
        expect(run_graph_node(page, node_id)).to_have_class(re.compile("gv-selected"))
    run_graph_node(page, "route").click()
    expect(panel).to_contain_text("node route")
    wait_idle(page)
    screenshots.save(page, "run_node_panel")

    other = page.context.new_page()  # a shared link opens the same panel (a new tab: a new session)
    other.goto(f"{studio.url}/run?run={run_id}&node=draft")
    other_panel = other.locator(".st-key-run_node_panel")
    expect(other_panel).to_contain_text("node draft", timeout=30_000)
    expect(other_panel).to_contain_text(shown(stored["draft"][1]))
    other.get_by_role("button", name="Close").click()
    expect(other_panel).to_have_count(0)
    expect(other).not_to_have_url(re.compile("node="))
    other.close()


def test_rerun_from_a_node_in_the_browser_forks_the_run(page: Any, studio: Any, screenshots: Any) -> None:
    source_id, _ = start_seven(page, studio, "Inspect fork")
    expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=60_000)
    run_graph_node(page, "join").click()
    panel = page.locator(".st-key-run_node_panel")
    expect(panel).to_contain_text("node join")
    panel.get_by_text("Rerun options").click()  # an invalid pinned output is said in one line
    pin = panel.get_by_role("combobox", name="Pin the output of")
    expect(pin).to_be_visible()
    option = page.get_by_role("option", name="draft", exact=True)
    for _ in range(10):  # a rerun (the run's last redraw) can close the list just opened: open it again
        wait_idle(page)
        pin.click()
        try:
            option.click(timeout=2_000)
            break
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    box = panel.get_by_label("Output of draft in the new run (JSON)")
    box.fill('{"not json')
    box.blur()
    wait_idle(page)
    panel.get_by_role("button", name="Rerun from here").click()
    expect(panel.get_by_text("is not valid JSON")).to_be_visible()
    assert source_id in page.url
    box.fill('"A pinned draft, long enough to take the long branch of the condition: yes, it is long."')
    box.blur()
    wait_idle(page)
    panel.get_by_role("button", name="Rerun from here").click()
    expect(page).not_to_have_url(re.compile(source_id), timeout=30_000)
    expect(page).to_have_url(re.compile(r"/run\?run=[0-9a-f]{32}"))
    new_id = page.url.split("run=", 1)[1].split("&", 1)[0]
    expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name=re.compile(f"Rerun of run {source_id[:8]} from node join"))).to_be_visible()
    for node_id in ("start", "draft", "route"):
        expect(run_graph_node(page, node_id)).to_have_attribute("data-status", "reused")
    for node_id in ("join", "result"):
        expect(run_graph_node(page, node_id)).to_have_attribute("data-status", "succeeded")
    stored = outputs_of(studio, new_id)
    assert "A pinned draft" in json.dumps(stored["draft"][1])
    run_graph_node(page, "draft").click()
    expect(page.locator(".st-key-run_node_panel")).to_contain_text("Reused from the source run")
    wait_idle(page)
    screenshots.save(page, "run_fork")

    page.get_by_role("button", name=re.compile("Rerun of run")).click()  # back to the source, its node open
    expect(page).to_have_url(re.compile(f"run={source_id}"))
    expect(page.locator(".st-key-run_node_panel")).to_contain_text("node join", timeout=30_000)

    page.goto(f"{studio.url}/history")  # History's graph: the newest run is the fork
    expect(run_graph_nodes(page, "history")).to_have_count(SEVEN, timeout=30_000)
    run_graph_node(page, "route", "history").click()
    history_panel = page.locator(".st-key-history_node_panel")
    expect(history_panel).to_contain_text("node route", timeout=10_000)
    expect(history_panel).to_contain_text("Output")
    wait_idle(page)
    screenshots.save(page, "history_node_panel")
