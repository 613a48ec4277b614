"""Fixtures of the browser tests: the dashboard under `streamlit run`, Chromium, a page per test.

* ``studio`` (session): ``streamlit run app.py`` on a free loopback port, a private ``DATA_DIR``, the
  offline model, web search pointed at a closed loopback port.
* ``hostile_studio`` (session, started on first use): a second server whose model endpoint is a
  :class:`tests.fake_openai.FakeOpenAIServer` answering every request with :data:`HOSTILE`.
* ``browser`` (session) and ``page`` (per test: a fresh context, so a fresh Streamlit session). A
  failing test leaves ``FAILED-<test>.png`` next to the screenshots.
* ``screenshots``: where PNGs go — ``$SCREENSHOT_DIR`` or ``<repo>/artifacts/screenshots`` — said once
  at the end of the session. ``readme=True`` also copies a shot to ``docs/screenshots/`` when
  ``README_SCREENSHOTS=1`` (refreshing the README's pictures is a deliberate act, not a side effect).

Everything here is skipped, with the reason, when ``/usr/bin/chromium`` or Playwright is missing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import (
    ROOT,
    Studio,
    copy_file,
    full_page_png,
    launch_chromium,
    missing_requirements,
    start_studio,
)

MISSING = missing_requirements()
HERE = Path(__file__).resolve().parent
HOSTILE = (
    "<img src=x onerror=alert(1)> <script>alert(2)</script> ![x](http://127.0.0.1:9/x.png) [click](javascript:alert(3))"
)
FAKE_KEY = "sk-browser-test-secret-0123456789"
_used_dirs: list[Path] = []
_skipped: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Browser tests run last: Playwright's sync API keeps an event loop on the main thread while it is
    # open, which would break every asyncio test after it.
    ours = [item for item in items if HERE in Path(str(item.fspath)).resolve().parents]
    items[:] = [item for item in items if item not in ours] + ours
    if MISSING is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests need Chromium and Playwright: {MISSING}")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)
            _skipped.append(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_line(f"browser tests skipped ({len(_skipped)}): {MISSING}")
    for folder in _used_dirs:
        terminalreporter.write_line(f"browser test screenshots: {folder}")


# --- servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """The dashboard with the offline model."""
    server = start_studio(tmp_path_factory.mktemp("studio") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_endpoint() -> Iterator[Any]:
    from tests.fake_openai import FakeOpenAIServer, TextReply

    server = FakeOpenAIServer(default=lambda body: TextReply(HOSTILE)).start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def hostile_studio(tmp_path_factory: pytest.TempPathFactory, fake_endpoint: Any) -> Iterator[Studio]:
    """The dashboard with its model endpoint at the fake server, which answers :data:`HOSTILE`."""
    server = start_studio(
        tmp_path_factory.mktemp("hostile") / "data",
        extra_env={"OPENAI_BASE_URL": fake_endpoint.base_url, "OPENAI_API_KEY": FAKE_KEY, "OPENAI_MODEL": "fake-model"},
    )
    yield server
    server.stop()


# --- browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")  # closed after each module, so no Playwright loop outlives the browser tests
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "artifacts" / "screenshots").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if folder not in _used_dirs:
        _used_dirs.append(folder)
    return folder


class Screenshots:
    def __init__(self, folder: Path):
        self.folder = folder

    def save(self, page: Any, name: str, *, readme: bool = False) -> Path:
        """A full-page PNG ``<folder>/<name>.png``; with ``readme`` and ``README_SCREENSHOTS=1`` in the
        environment also ``docs/screenshots/<name>.png`` (a normal test run leaves the checkout alone)."""
        path = full_page_png(page, self.folder / f"{name}.png")
        if readme and os.environ.get("README_SCREENSHOTS") == "1":
            copy_file(path, ROOT / "docs" / "screenshots" / f"{name}.png")
        return path


@pytest.fixture
def screenshots(screenshot_dir: Path) -> Screenshots:
    return Screenshots(screenshot_dir)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, screenshot_dir: Path) -> Iterator[Any]:
    """A page in a fresh browser context (a new Streamlit session)."""
    from tests.browser.studio import VIEWPORT

    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            tab.screenshot(path=str(screenshot_dir / f"FAILED-{name}.png"), full_page=True)
        except Exception as exc:  # noqa: BLE001 - a broken page must not hide the test's own failure
            print(f"could not save the failure screenshot: {exc}")
    context.close()
