"""The HTTP API in a real browser (Debian's Chromium): /docs with no internet, EventSource on a finished run.

No dashboard here: a real ``python -m engine.api`` server (tests/integration/test_api.py starts it) and
the ``page`` fixture's Chromium. Every request that does not go to the API is aborted, standing in for
a machine with no internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_api import Server, example_doc, follow_sse, start_run, start_server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("api-browser"), OFFLINE_TOKEN_DELAY_S="0")
    yield server
    server.stop()


def offline(page: Any, api: Server) -> list[str]:
    """Abort every request that is not to the API; returns the list of aborted URLs."""
    aborted: list[str] = []

    def route(request_route: Any) -> None:
        if request_route.request.url.startswith(api.url):
            request_route.continue_()
        else:
            aborted.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    return aborted


def test_docs_render_with_no_internet(api: Server, page: Any) -> None:
    aborted = offline(page, api)
    page.goto(f"{api.url}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 10  # every operation listed
    assert page.get_by_text("/runs/{run_id}/events").first.is_visible()
    assert aborted == []


def test_eventsource_on_a_finished_run_stops_reconnecting(api: Server, page: Any) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    events = follow_sse(api, run_id)
    offline(page, api)
    page.goto(f"{api.url}/health")  # a page of the API's own origin
    result = page.evaluate(
        """(path) => new Promise(resolve => {
            const source = new EventSource(path);
            let opens = 0, errors = 0, received = 0;
            source.onopen = () => opens++;
            source.onerror = () => errors++;
            source.addEventListener("run.completed", () => received++);
            source.addEventListener("run.started", () => received++);
            setTimeout(() => resolve({opens, errors, received, state: source.readyState}), 8000);
        })""",
        f"/runs/{run_id}/events",
    )
    # The stream once (both ends of it seen), then one reconnect answered 204: the source is CLOSED (2).
    # Before, each reconnect got an empty 200 and the browser came back every ~3 s, for ever.
    assert result["state"] == 2, result
    assert result["opens"] == 1 and result["received"] == 2, (result, len(events))
