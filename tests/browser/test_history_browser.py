"""Honest history in a real browser: a resumed run still shows its failure, with the error text, on
the Run page and in History, and its duration reads "active … · wall …" on both."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import ROOT, expect_tools_clear_of_nodes, open_page, run_graph_nodes, wait_idle

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

READS_A_NOTE: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "Reads a note",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "read", "type": "tool", "config": {"tool": "file_reader", "args": {"path": "note.txt"}}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.read.output.content }}"}},
    ],
    "edges": [{"source": "start", "target": "read"}, {"source": "read", "target": "out"}],
}


def engine_cli(studio: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m engine`` over the dashboard's own store (its DATA_DIR)."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=studio.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def failed_then_resumed(studio: Any, tmp_path: Path) -> tuple[str, str]:
    """A run that fails (the note is missing), then, once the note exists, is resumed and completes.
    Returns the run id and the failed attempt's error text as stored."""
    doc = tmp_path / "reads_a_note.json"
    doc.write_text(json.dumps(READS_A_NOTE), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    first = engine_cli(studio, "run", str(doc), "--events", str(events), "--quiet")
    assert first.returncode == 1, first.stderr
    logged = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    run_id = logged[0]["run_id"]
    error = next(e["data"]["error"] for e in logged if e["type"] == "node.failed")
    time.sleep(1.0)  # idle between the failure and the resume: wall time, not active time
    files = Path(studio.env["DATA_DIR"]) / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "note.txt").write_text("the note is here now", encoding="utf-8")
    second = engine_cli(studio, "resume", run_id, "--quiet")
    assert second.returncode == 0, second.stderr
    return run_id, error


def test_a_resumed_run_still_shows_its_failure_on_the_run_page_and_in_history(
    page: Any, studio: Any, tmp_path: Path, screenshots: Any
) -> None:
    run_id, error = failed_then_resumed(studio, tmp_path)
    assert "note.txt" in error
    open_page(page, studio, f"run?run={run_id}", "Run")
    expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=30_000)
    headline = page.get_by_text(re.compile(r"^Earlier attempt \(before resume 1\): node read failed"))
    expect(headline).to_be_visible()
    expect(page.locator("[data-testid='stCode']").filter(has_text=error).first).to_be_visible()  # 0 clicks
    run_duration = page.get_by_text(re.compile(r"active .+ · wall .+")).first
    expect(run_duration).to_be_visible()
    expect(page.get_by_text("3 succeeded of 3", exact=True)).to_be_visible()
    screenshots.save(page, "resumed-run-page")

    open_page(page, studio, "history", "History")  # the newest run is selected: 0 clicks
    expect(run_graph_nodes(page, "history")).to_have_count(3)
    expect_tools_clear_of_nodes(page, "history")
    expect(page.get_by_text(re.compile(r"^Earlier attempt \(before resume 1\): node read failed"))).to_be_visible()
    expect(page.locator("[data-testid='stCode']").filter(has_text=error).first).to_be_visible()
    page.get_by_role("tab", name="Nodes").click()  # 1 click: the Nodes tab lists the earlier attempt, marked
    wait_idle(page)
    expect(
        page.get_by_text(re.compile(r"read · execution 0 · earlier attempt \(before resume 1\) · failed"))
    ).to_be_visible()
    captions = page.locator("[data-testid='stCaptionContainer']")
    history_duration = captions.filter(has_text=re.compile(r"^Started .+ · wall ")).first
    expect(history_duration).to_be_visible()
    shown = re.search(r"active .+ · wall \S+ \S+", history_duration.inner_text())
    assert shown is not None and shown.group(0) in run_duration.inner_text(), "one duration on both pages"
    screenshots.save(page, "resumed-run-history")
