"""Every node type's panel shows its input as rendered, and History keeps the picked node in the address
(issue 14): a run with input, transform, condition (a loop), tool, map and output nodes, each clicked on
the Run page; ``/history?run=ID&node=NODE`` opens that run (not the newest) with the node's panel, a click
on another node puts it in the address, and a reload keeps it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import run_graph_node, run_graph_nodes, wait_idle
from tests.browser.test_history_browser import engine_cli
from tests.unit.test_node_inputs import EVERY_KIND

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

# node -> (a piece of its recorded input, a piece of its output), as the panel shows them
SHOWN = {
    "start": ('"inputs"', '"n"'),
    "count": ("iteration + 1", "2"),
    "again": ('"taken"', "done"),
    "calc": ("2 * 3", "6"),
    "each": ("range(inputs.n)", "0"),
    "words": ("rounds", "2 rounds, 6"),
    "result": ("nodes.each.output", '"calc"'),
}
MISSING = re.compile("not recorded|stopped before its input")


def run_every_kind(studio: Any, tmp_path: Path, name: str) -> str:
    """One run of the every-kind workflow through the CLI, in the dashboard's store; its id."""
    doc = tmp_path / f"{name}.json"
    doc.write_text(json.dumps({**EVERY_KIND, "name": name}), encoding="utf-8")
    events = tmp_path / f"{name}.jsonl"
    proc = engine_cli(studio, "run", str(doc), "--events", str(events), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(events.read_text(encoding="utf-8").splitlines()[0])["run_id"])


def test_every_node_type_shows_its_input_and_output(page: Any, studio: Any, tmp_path: Path, screenshots: Any) -> None:
    run_id = run_every_kind(studio, tmp_path, "Every kind on the Run page")
    page.goto(f"{studio.url}/run?run={run_id}")
    expect(run_graph_nodes(page)).to_have_count(len(SHOWN), timeout=30_000)
    panel = page.locator(".st-key-run_node_panel")
    for node_id, (given, output) in SHOWN.items():
        run_graph_node(page, node_id).click()
        expect(panel).to_contain_text(f"node {node_id}", timeout=10_000)
        expect(page).to_have_url(re.compile(rf"[?&]node={node_id}(&|$)"))
        latest = panel.locator("[data-testid='stExpander']").filter(has_text="Execution").last
        expect(latest).to_contain_text("Input (as rendered)")
        expect(latest).to_contain_text(given)
        expect(latest).to_contain_text(output)
        expect(latest).not_to_contain_text(MISSING)
    run_graph_node(page, "again").click()
    expect(panel).to_contain_text("node again")
    expect(panel).to_contain_text("2 executions")
    wait_idle(page)
    screenshots.save(page, "run_condition_input")


def test_history_keeps_the_picked_node_in_the_address(page: Any, studio: Any, tmp_path: Path, screenshots: Any) -> None:
    older = run_every_kind(studio, tmp_path, "Every kind, older")
    run_every_kind(studio, tmp_path, "Every kind, newer")  # the newest: History would show it by default
    page.goto(f"{studio.url}/history?run={older}&node=calc")
    panel = page.locator(".st-key-history_node_panel")
    expect(panel).to_contain_text("node calc", timeout=30_000)
    expect(panel).to_contain_text("2 * 3")
    # the linked run (its id in the heading's code), not the newest; the runs table may hold the id as a cell too
    expect(page.locator("code").filter(has_text=re.compile(rf"^{older}$"))).to_be_visible()
    run_graph_node(page, "words", "history").click()
    expect(panel).to_contain_text("node words", timeout=10_000)
    expect(page).to_have_url(re.compile(rf"/history\?(?=.*run={older})(?=.*node=words)"))
    wait_idle(page)
    screenshots.save(page, "history_node_in_address")
    page.reload()
    expect(panel).to_contain_text("node words", timeout=30_000)
    expect(panel).to_contain_text("rounds")
    page.get_by_role("button", name="Close").click()
    expect(panel).to_have_count(0)
    expect(page).not_to_have_url(re.compile("node="))
    expect(page).to_have_url(re.compile(f"run={older}"))
