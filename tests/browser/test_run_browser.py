"""Running workflows from the UI and watching them on the Run page in a real browser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.studio import (
    ROOT,
    chain_workflow,
    click_button,
    expect_tools_clear_of_nodes,
    import_in_builder,
    open_page,
    run_graph_node,
    run_graph_nodes,
    wait_idle,
)

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

pytestmark = pytest.mark.slow

RESEARCH = json.loads((ROOT / "examples" / "research_assistant.json").read_text(encoding="utf-8"))
SUCCEEDED_FILL = "rgb(220, 252, 231)"  # ui.status.COLOURS["succeeded"][0], #dcfce7


def run_from_home(page: Any, studio: Any, example: str) -> str:
    """Press a template's Run on Home; returns the run id the Run page shows."""
    open_page(page, studio, "", "Workflow Studio")
    click_button(page, f"home_run_{example}")
    expect(page.get_by_role("heading", name="Run", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/run\?run=[0-9a-f]{32}$"))
    return page.url.rsplit("=", 1)[1]


def wait_completed(page: Any, n_nodes: int) -> None:
    """The run's badge says completed and the progress bar counts every node."""
    expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"{n_nodes} succeeded of {n_nodes}", exact=True)).to_be_visible()


def expect_graph_succeeded(page: Any, node_ids: list[str], timeout: float = 30_000) -> None:
    """Every node on the Run page's graph says succeeded and is green."""
    for node_id in node_ids:
        drawn = run_graph_node(page, node_id)
        expect(drawn).to_contain_text("succeeded", timeout=timeout)
        expect(drawn.locator("rect")).to_have_css("fill", SUCCEEDED_FILL)


def test_run_an_example_from_home_every_node_succeeds_and_the_result_appears(
    page: Any, studio: Any, screenshots: Any
) -> None:
    run_id = run_from_home(page, studio, "research_assistant")
    ids = [n["id"] for n in RESEARCH["nodes"]]
    wait_completed(page, len(ids))
    expect(page.get_by_text(run_id)).to_be_visible()
    for label in ("Case for", "Case against", "Editor"):  # each agent's streamed answer, with its status
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text=f"{label} · succeeded")).to_have_count(1)

    result = page.get_by_role("tabpanel", name="Result")  # the output node's value in the JSON viewer
    expect(result.locator("strong", has_text="report")).to_be_visible()
    expect(result).to_contain_text(RESEARCH["inputs"]["query"]["default"])
    expect(result).to_contain_text("Summary: Offline answer")
    expect(page.get_by_text("answered by the offline model")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel run")).to_be_disabled()
    # the run selector offers no "clear": the page keeps showing its run, so a clear button would do nothing
    expect(page.get_by_test_id("stSelectbox").get_by_role("button", name="Clear value")).to_have_count(0)

    # The live graph is checked by the next tests; here the run's link opened afresh, as a user who comes back sees it.
    page.reload()
    expect(page.get_by_role("heading", name="Research assistant")).to_be_visible()
    expect_graph_succeeded(page, ids)
    expect(run_graph_nodes(page)).to_have_count(len(ids))
    expect(page.get_by_role("tabpanel", name="Result")).to_contain_text("Summary: Offline answer")
    wait_idle(page)
    screenshots.save(page, "run", readme=True)


def test_live_graph_turns_every_node_succeeded(page: Any, studio: Any) -> None:
    run_from_home(page, studio, "research_assistant")
    ids = [n["id"] for n in RESEARCH["nodes"]]
    wait_completed(page, len(ids))
    expect_graph_succeeded(page, ids, timeout=5_000)
    expect_tools_clear_of_nodes(page)


# A browser whose clock is 5 minutes ahead of the server's (Date only; timers run normally).
SKEWED_DATE = """(() => {
    const RealDate = Date, skew = 5 * 60 * 1000;
    class SkewedDate extends RealDate {
        constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args); }
        static now() { return RealDate.now() + skew; }
    }
    globalThis.Date = SkewedDate;
})();"""


def test_live_graph_follows_a_run_when_the_browser_clock_is_ahead(
    page: Any, hostile_studio: Any, fake_endpoint: Any
) -> None:
    page.add_init_script(SKEWED_DATE)
    fake_endpoint.enqueue_text("A slow, harmless answer.", delay_s=2.5)  # the graph is drawn while the agent runs
    run_from_home(page, hostile_studio, "calculator_agent")
    expect(run_graph_node(page, "solver")).to_contain_text("running")
    wait_completed(page, 3)
    expect_graph_succeeded(page, ["start", "solver", "answer"], timeout=5_000)


def test_run_picker_does_not_say_running_once_the_run_completed(page: Any, studio: Any) -> None:
    run_id = run_from_home(page, studio, "calculator_agent")
    wait_completed(page, 3)
    picker = page.get_by_role("combobox", name="Run")
    expect(picker).to_have_value(re.compile(run_id[:8]))
    expect(picker).not_to_have_value(re.compile(r" · running · "), timeout=5_000)


def click_start_run(page: Any) -> None:
    """Open the Run popover and click Start run. A rerun can close the popover before the click lands
    (the button is detached and never clicked); then open it again, as a person would. A click that
    was dispatched is never repeated: losing it is what the test is about."""
    for _ in range(3):
        page.locator("[data-testid='stPopover']").filter(has_text="Run").locator("button").first.click()
        try:
            page.get_by_role("button", name="Start run").click(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError("the Run popover closed before Start run could be clicked, three times")


def test_start_run_at_once_after_opening_a_workflow_opens_the_run_page(page: Any, studio: Any, tmp_path: Any) -> None:
    """No waiting for the page to settle: the Builder's canvas reports back twice after every redraw
    (each report reruns the page), and neither the submit nor the switch to the Run page may be lost."""
    run_url = re.compile(r"/run\?run=[0-9a-f]{32}$")
    for attempt in range(3):
        path = tmp_path / f"quick_{attempt}.json"
        path.write_text(json.dumps(chain_workflow(f"Quick start {attempt}", 2)), encoding="utf-8")
        open_page(page, studio, "builder", "Inspector")
        import_in_builder(page, path)
        expect(page.get_by_role("heading", name=f"Quick start {attempt}")).to_be_visible()
        page.keyboard.press("Escape")
        click_start_run(page)
        expect(page).to_have_url(run_url, timeout=15_000)
        page.wait_for_timeout(2500)  # the canvas's late reports
        expect(page).to_have_url(run_url)
        expect(page.get_by_role("heading", name="Run", exact=True)).to_be_visible()
        expect(page.get_by_text("completed", exact=True)).to_be_visible(timeout=30_000)
