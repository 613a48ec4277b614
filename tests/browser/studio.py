"""Starting the dashboard under `streamlit run` and driving it with Playwright (Debian's Chromium).

Shared by the browser tests (``tests/browser``) and ``bench/ui_bench.py``. Playwright is imported
lazily, so this module imports even where it is missing (the tests then skip with the reason).

* :func:`start_studio` runs ``streamlit run app.py`` on a free loopback port with a private
  ``DATA_DIR``, no model endpoint unless asked, and web search pointed at a closed loopback port
  (nothing reaches the internet); :meth:`Studio.stop` ends it (SIGTERM, then SIGKILL).
* :func:`launch_chromium` launches ``/usr/bin/chromium`` with the flags measured in
  ``shared/notes/streamlit-stack.md`` (never ``playwright install``).
* Page helpers: :func:`flow` (the *last* streamlit-flow iframe: opening a document gives the canvas a
  new key, so two may exist for a moment), :func:`click_button` (Streamlit draws a second, hidden copy
  of buttons that have a tooltip), :func:`choose` (react-aria select boxes), :func:`wait_idle`,
  :func:`full_page_png` (Streamlit scrolls an inner container, so the viewport is grown to the
  content before the shot).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The checkout `streamlit run` starts in (default: this one). Pointing it at a patched copy checks a
# page fix against these tests without touching the working tree.
APP_DIR = Path(os.environ.get("STUDIO_APP_DIR") or ROOT).resolve()
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
# ui.canvas's patched streamlit-flow (titled streamlit_flow.streamlit_flow before it was patched)
FLOW_IFRAME = "iframe[title$='streamlit_flow']"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port: requests there fail at once

# Variables of the test process that must not leak into the dashboard: model endpoints, memory and
# store locations, plugins, Streamlit overrides. A test adds back the ones it wants.
_DROP_PREFIXES = ("OPENAI_", "MEMORY_", "CHROMA_", "STREAMLIT_")
_DROP = {"DATABASE_URL", "API_TOKEN", "TOOLS_MODULES", "FILES_ROOT", "DATA_DIR"}


def missing_requirements() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium; scripts/test.sh does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -r requirements-test.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Studio:
    """A running ``streamlit run app.py``."""

    url: str
    port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    started_at: float  # time.monotonic() just before the process was spawned
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def studio_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith(_DROP_PREFIXES)}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "OFFLINE_TOKEN_DELAY_S": "0.01",
            "WEB_SEARCH_PROVIDER": "searxng",
            "SEARXNG_URL": CLOSED_PORT_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def start_studio(
    data_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = 60.0,
    app_dir: Path | None = None,
) -> Studio:
    """Start the dashboard (cwd = ``app_dir``, default :data:`APP_DIR`); with ``wait``, return once it is healthy."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir.parent / f"streamlit-{port}.log"
    env = studio_env(data_dir, extra_env)
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until it ends
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=app_dir or APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    studio = Studio(f"http://127.0.0.1:{port}", port, data_dir, log_path, proc, started, env)
    if wait:
        wait_healthy(studio, timeout)
    return studio


def wait_healthy(studio: Studio, timeout: float = 60.0) -> float:
    """Seconds from spawn until ``/_stcore/health`` answered ok."""
    deadline = time.monotonic() + timeout
    while True:
        if studio.proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {studio.proc.returncode}:\n{studio.log()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{studio.url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return time.monotonic() - studio.started_at
        except OSError:
            pass
        if time.monotonic() > deadline:
            studio.stop()
            raise RuntimeError(
                f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{studio.log()[-4000:]}"
            )
        time.sleep(0.05)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium through Playwright (no downloaded browser)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# --- page helpers ------------------------------------------------------------------------------------


def flow(page: Any) -> Any:
    """The streamlit-flow canvas (the newest iframe)."""
    return page.frame_locator(FLOW_IFRAME).last


def flow_node(page: Any, node_id: str) -> Any:
    return flow(page).locator(f".react-flow__node[data-id='{node_id}']")


def run_graph_node(page: Any, node_id: str, page_key: str = "run") -> Any:
    """A node of a run's graph (the Run page's, or History's with ``page_key="history"``): in-page SVG."""
    return page.locator(f".st-key-{page_key}_graph .gv-node[data-id='{node_id}']")


def run_graph_nodes(page: Any, page_key: str = "run") -> Any:
    return page.locator(f".st-key-{page_key}_graph .gv-node")


def expect_tools_clear_of_nodes(page: Any, page_key: str = "run") -> None:
    """The graph's zoom buttons cover no node (they sat over the top-right node's corner)."""
    buttons = [stable_box(b) for b in page.locator(f".st-key-{page_key}_graph .gv-tools button").all()]
    assert len(buttons) == 3
    for node in run_graph_nodes(page, page_key).all():
        n = stable_box(node)
        for b in buttons:
            apart = b["x"] + b["width"] <= n["x"] or n["x"] + n["width"] <= b["x"]
            apart = apart or b["y"] + b["height"] <= n["y"] or n["y"] + n["height"] <= b["y"]
            assert apart, f"a zoom button covers node {node.get_attribute('data-id')}"


def wait_idle(page: Any, timeout: float = 30_000) -> None:
    """Until Streamlit's script is not running (the page shows the result of the last rerun)."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", state="attached", timeout=timeout
    )


def settle(page: Any, quiet_ms: int = 800, timeout: float = 30_000) -> None:
    """Until no script run was seen for ``quiet_ms``.

    After the Builder's canvas is (re)drawn, streamlit-flow reports back twice (on accepting the state
    and after its layout pass) and each report reruns the page. The page's own buttons survive that
    (their work is done in callbacks, and ``ui.nav`` finishes a switch to the Run page that a report
    overtook; ``test_start_run_at_once_after_opening_a_workflow_opens_the_run_page`` clicks without
    settling), but a click *on the canvas* can still race a redraw, so the helpers let the page settle.
    """
    page.evaluate("() => { window.__settleBusy = performance.now(); }")
    page.wait_for_function(
        """(quiet) => {
            const app = document.querySelector("[data-testid='stApp']");
            const now = performance.now();
            if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') {
                window.__settleBusy = now;
                return false;
            }
            return now - window.__settleBusy >= quiet;
        }""",
        arg=quiet_ms,
        polling=25,
        timeout=timeout,
    )


def open_page(page: Any, studio: Studio, path: str, heading: str, *, exact: bool = True) -> None:
    """Go to a page of the dashboard and wait for its title (not the loading skeleton)."""
    page.goto(f"{studio.url}/{path.lstrip('/')}")
    page.get_by_role("heading", name=heading, exact=exact).first.wait_for()
    wait_idle(page)


def click_button(page: Any, key: str) -> None:
    """Click the Streamlit button with widget key ``key`` (the visible copy)."""
    page.locator(f".st-key-{key} button:visible").first.click()


def click_palette(page: Any, node_type: str) -> None:
    """Click a node type in the Builder's palette (a component: its buttons live in a shadow root,
    which Playwright's CSS locators pierce)."""
    page.locator(f"button[data-node-type='{node_type}']:visible").first.click()


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def stable_box(locator: Any, timeout: float = 10.0) -> dict[str, float]:
    """The element's bounding box once it stopped moving (React Flow fits the view after a redraw)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        box = locator.bounding_box()
        if box is not None and box == last:
            return box
        if time.monotonic() > deadline:
            raise AssertionError(f"{locator} kept moving: {last} -> {box}")
        last = box
        time.sleep(0.25)


def drag(page: Any, source: Any, target: Any) -> None:
    """Drag with the mouse from the centre of ``source`` to the centre of ``target`` (any frames)."""
    a, b = stable_box(source), stable_box(target)
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=20)
    page.mouse.up()


def full_page_png(page: Any, path: Path) -> Path:
    """A PNG of the whole page: the viewport grows to Streamlit's scrolling main area first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        """() => {
            const main = document.querySelector("[data-testid='stMain']");
            const side = document.querySelector("[data-testid='stSidebarContent']");
            return Math.max(main ? main.scrollHeight : 0, side ? side.scrollHeight : 0, document.body.scrollHeight);
        }"""
    )
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 40, 8000))})
    try:
        page.wait_for_timeout(600)  # relayout after the resize
        wait_idle(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return path


def chain_workflow(
    name: str, n: int, *, kind: str = "transform", prompt: str = "Step {i}: {{{{ inputs.topic }}}}"
) -> dict[str, Any]:
    """A valid workflow: input -> ``n`` nodes in a line (``kind`` "transform" or "agent") -> output."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "input", "position": {"x": 0, "y": 0}}]
    edges: list[dict[str, str]] = []
    prev = "start"
    per_row = 10
    for i in range(1, n + 1):
        node_id = f"n{i:03d}"
        config = {"expression": f"{'inputs.topic' if prev == 'start' else f'nodes.{prev}.output'}"}
        if kind == "agent":
            config = {"prompt": prompt.format(i=i)}
        row, col = divmod(i, per_row)
        nodes.append(
            {
                "id": node_id,
                "type": kind,
                "label": f"Step {i}",
                "position": {"x": col * 240, "y": row * 110},
                "config": config,
            }
        )
        edges.append({"source": prev, "target": node_id})
        prev = node_id
    row, col = divmod(n + 1, per_row)
    nodes.append(
        {
            "id": "result",
            "type": "output",
            "position": {"x": col * 240, "y": row * 110},
            "config": {"value": f"{{{{ nodes.{prev}.output }}}}"},
        }
    )
    edges.append({"source": prev, "target": "result"})
    return {
        "format": "workflow/v1",
        "name": name,
        "description": f"{n} {kind} nodes in a chain",
        "inputs": {"topic": {"type": "string", "description": "anything", "default": "browser tests"}},
        "nodes": nodes,
        "edges": edges,
    }


def branch_workflow(name: str = "Branch and join") -> dict[str, Any]:
    """The issue's 7-node graph: start -> agent -> condition -> two branches -> join -> result (valid)."""
    nodes = [
        {"id": "start", "type": "input", "position": {"x": 0, "y": 100}},
        {"id": "draft", "type": "agent", "label": "Draft", "position": {"x": 220, "y": 100},
         "config": {"prompt": "Write about {{ inputs.topic }}"}},
        {"id": "route", "type": "condition", "label": "Long?", "position": {"x": 440, "y": 100},
         "config": {"expression": "'long' if nodes.draft.output | length > 80 else 'short'"}},
        {"id": "trim", "type": "transform", "label": "Trim", "position": {"x": 660, "y": 0},
         "config": {"template": "{{ nodes.draft.output[:80] }}"}},
        {"id": "keep", "type": "transform", "label": "Keep", "position": {"x": 660, "y": 200},
         "config": {"template": "{{ nodes.draft.output }}"}},
        {"id": "join", "type": "transform", "label": "Join", "position": {"x": 880, "y": 100},
         "config": {"template": "{{ nodes.trim.output or nodes.keep.output }}"}},
        {"id": "result", "type": "output", "position": {"x": 1100, "y": 100},
         "config": {"value": "{{ nodes.join.output }}"}},
    ]  # fmt: skip
    edges = [
        {"source": "start", "target": "draft"},
        {"source": "draft", "target": "route"},
        {"source": "route", "target": "trim", "when": "long"},
        {"source": "route", "target": "keep", "when": "default"},
        {"source": "trim", "target": "join"},
        {"source": "keep", "target": "join"},
        {"source": "join", "target": "result"},
    ]
    return {
        "format": "workflow/v1",
        "name": name,
        "description": "start -> agent -> condition -> two branches -> join -> result",
        "inputs": {"topic": {"type": "string", "description": "anything", "default": "browser tests"}},
        "nodes": nodes,
        "edges": edges,
    }


def import_in_builder(page: Any, path: Path, *, settle_first: bool = True) -> None:
    """Builder: Open -> import a workflow file (the page must already show the Builder).

    Waits for the canvas to be drawn and the page to settle first: a file chosen while the canvas's
    iframe is still loading (the first ~1.5 s after the page opens, the browser's main thread busy
    with its script) can be dropped by the browser before any upload starts (issue 6 note).
    """
    if settle_first:  # (the UI bench times a render and waits for the page its own way)
        flow(page).locator(".react-flow__node").first.wait_for()
        settle(page)
    page.locator("[data-testid='stPopover']").filter(has_text="Open").locator("button").first.click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))


def start_run_in_builder(page: Any) -> str:
    """Builder: Run -> Start run (default inputs); waits for the Run page and returns the run id."""
    settle(page)
    page.locator("[data-testid='stPopover']").filter(has_text="Run").locator("button").first.click()
    page.get_by_role("button", name="Start run").click()
    deadline = time.monotonic() + 30
    while "/run?run=" not in page.url:  # a same-document navigation (history.pushState)
        if time.monotonic() > deadline:
            raise AssertionError(f"Start run did not open the Run page (still at {page.url})")
        page.wait_for_timeout(50)
    return page.url.rsplit("=", 1)[1]


def copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
