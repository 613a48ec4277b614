"""The Evaluate page in a real browser: upload a dataset, run it, watch the progress bar and the rows fill in
while it runs (no reload), then evaluate a second version of the workflow and compare: the regressed rows
are highlighted red, and the other way round the improved ones green."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import ROOT, choose, open_page, wait_idle

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect
Image = pytest.importorskip("PIL.Image", reason="Pillow is missing")

pytestmark = pytest.mark.slow

ROWS = 24
REGRESSED_RGB = (0xFB, 0xD9, 0xD9)  # the compare table's background of a regressed row
IMPROVED_RGB = (0xD7, 0xF5, 0xDD)
CALCULATOR_V2: dict[str, Any] = {  # examples/eval/calculator_eval.json whose solver has no calculator
    "format": "workflow/v1",
    "name": "Calculator eval",
    "inputs": {"question": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "solver", "type": "agent", "config": {"prompt": "{{ inputs.question }}"}},
        {"id": "answer", "type": "output", "config": {"value": "{{ nodes.solver.output }}"}},
    ],
    "edges": [{"source": "start", "target": "solver"}, {"source": "solver", "target": "answer"}],
}


def _dataset(path: Path) -> Path:
    """``ROWS`` arithmetic questions the offline model answers with the calculator (every ``numeric`` passes;
    its one-sentence answers are never ``exact``)."""
    lines = ["question,expected,kind"]
    for i in range(ROWS):
        a, b = 11 + i, 3 + 2 * i
        lines.append(f"What is {a} + {b}?,{a + b},addition")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows_passed(page: Any) -> tuple[int, int]:
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Rows passed")
    value = metric.locator("[data-testid='stMetricValue']").inner_text()
    passed, total = re.fullmatch(r"(\d+) / (\d+)", value.strip()).groups()  # type: ignore[union-attr]
    return int(passed), int(total)


def _has_colour(png: bytes, rgb: tuple[int, int, int], tolerance: int = 6) -> int:
    """How many pixels of ``png`` are within ``tolerance`` of ``rgb``."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    r0, g0, b0 = rgb
    return sum(
        1
        for r, g, b in image.get_flattened_data()
        if abs(r - r0) <= tolerance and abs(g - g0) <= tolerance and abs(b - b0) <= tolerance
    )


def _run_evaluation(page: Any, *, concurrency: int) -> None:
    page.get_by_label("Rows at once").fill(str(concurrency))
    page.get_by_label("Rows at once").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run the evaluation").click()


def test_upload_run_live_progress_then_compare(page: Any, studio: Any, tmp_path: Path, screenshots: Any) -> None:
    open_page(page, studio, "evaluate", "Evaluate")
    choose(page, "Workflow", "Example: calculator_eval")
    wait_idle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(_dataset(tmp_path / "sums.csv")))
    mapping = page.locator("[data-testid='stMarkdown']").filter(has_text=f"{ROWS} rows from")
    expect(mapping).to_have_text(f"{ROWS} rows from sums.csv. Inputs from columns: question; metadata: kind.")

    # one row at a time, so the run lasts long enough to be watched
    _run_evaluation(page, concurrency=1)
    bar = page.locator("[data-testid='stProgress']")
    expect(bar).to_be_visible(timeout=15_000)
    expect(page.get_by_text(re.compile(rf"^\d+ of {ROWS} rows$"))).to_be_visible()
    # live: the rows passed so far grow while the bar is still there, with no reload or click
    page.wait_for_function(
        """() => {
            const m = [...document.querySelectorAll("[data-testid='stMetric']")]
                .find(e => e.textContent.includes('Rows passed'));
            const v = m && m.querySelector("[data-testid='stMetricValue']").textContent.trim();
            return v && /^[1-9]\\d* \\/ \\d+$/.test(v) && document.querySelector("[data-testid='stProgress']");
        }""",
        timeout=30_000,
    )
    passed_while_running, total = _rows_passed(page)
    assert total == ROWS and 0 < passed_while_running < ROWS
    expect(page.locator(".st-key-eval_rows")).to_be_visible()
    screenshots.save(page, "evaluate-running")

    # the end: the bar goes away by itself, every row scored
    expect(bar).to_have_count(0, timeout=120_000)
    wait_idle(page)
    assert _rows_passed(page) == (ROWS, ROWS)
    expect(page.locator(".st-key-eval_rows [data-testid='stDataFrameResizable']")).to_be_visible()
    expect(page.get_by_text("Status: completed · scorers: numeric")).to_be_visible()
    screenshots.save(page, "evaluate-finished", readme=True)

    # version 2 of the workflow (its solver lost the calculator: the offline model then only echoes the
    # question), saved in the studio's store by a run from the command line; evaluated, then compared
    v2 = tmp_path / "calculator_v2.json"
    v2.write_text(json.dumps(CALCULATOR_V2), encoding="utf-8")
    saved = subprocess.run(
        [sys.executable, "-m", "engine", "run", str(v2), "--input", "question=What is 1 + 1?", "--quiet"],
        cwd=ROOT, env=studio.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    page.reload()
    wait_idle(page)
    choose(page, "Workflow", "Saved: Calculator eval")
    wait_idle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(tmp_path / "sums.csv"))
    expect(mapping).to_be_visible()
    _run_evaluation(page, concurrency=4)
    expect(page.get_by_role("combobox", name="Evaluation")).to_have_value(re.compile(r"^Calculator eval v2 · sums"))
    expect(page.get_by_text("Status: completed")).to_be_visible(timeout=120_000)
    expect(page.locator("[data-testid='stProgress']")).to_have_count(0)
    wait_idle(page)
    assert _rows_passed(page) == (0, ROWS)
    page.get_by_role("tab", name="Compare").click()
    expect(page.get_by_text(f"0 improved · {ROWS} regressed · 0 same")).to_be_visible()
    table = page.locator(".st-key-eval_compare")
    expect(table.locator("[data-testid='stDataFrameResizable']")).to_be_visible()
    page.wait_for_timeout(500)  # the canvas draws its cells after the frame appears
    assert _has_colour(table.screenshot(), REGRESSED_RGB) > 500, "regressed rows are not highlighted"
    screenshots.save(page, "evaluate-compare", readme=True)

    # the other way round (version 1 against version 2 as the base): every row improved, highlighted green
    wait_idle(page)
    _pick(page, "Evaluation", re.compile(r"^Calculator eval v1 · sums\.csv"))
    wait_idle(page)
    expect(page.get_by_role("combobox", name="Evaluation")).to_have_value(re.compile(r"^Calculator eval v1 · sums"))
    page.get_by_role("tab", name="Compare").click()
    expect(page.get_by_text(f"{ROWS} improved · 0 regressed · 0 same")).to_be_visible()
    page.wait_for_timeout(500)
    assert _has_colour(page.locator(".st-key-eval_compare").screenshot(), IMPROVED_RGB) > 500
    assert _has_colour(page.locator(".st-key-eval_compare").screenshot(), REGRESSED_RGB) == 0


def _pick(page: Any, label: str, option: re.Pattern[str]) -> None:
    """Pick the option matching ``option`` in the select box ``label`` (after a full-page screenshot's
    viewport change the first click on it may only focus it: click again until the list is open)."""
    box = page.get_by_role("combobox", name=label)
    wanted = page.get_by_role("option", name=option)
    for _ in range(5):
        box.click()
        try:
            wanted.wait_for(timeout=3_000)
            break
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError: the list did not open, click again
            page.keyboard.press("Escape")
    wanted.click()
