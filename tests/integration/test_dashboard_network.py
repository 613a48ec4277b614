"""The dashboard's network exposure under the repository's ``.streamlit/config.toml``.

A real ``streamlit run app.py`` on a free loopback port with no ``--server.*``
flags and no ``STREAMLIT_*`` variables, so only the config file decides;
raw requests (httpx, websockets) stand in for what a hostile page's browser
sends. The dashboard has no login and can run code, read files and delete
memories, so by default it must listen on 127.0.0.1 only and refuse a
WebSocket (the channel that drives the app) reached under a foreign name (DNS
rebinding) or opened by a page of a foreign origin.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.browser.studio import ROOT, Studio, free_port, studio_env, wait_healthy

STREAM = "/_stcore/stream"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    root = tmp_path_factory.mktemp("dashboard")
    data_dir = root / "data"
    data_dir.mkdir()
    port = free_port()
    log_path = root / "streamlit.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
            cwd=ROOT,
            env=studio_env(data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    studio = Studio(f"http://127.0.0.1:{port}", port, data_dir, log_path, proc, time.monotonic())
    try:
        wait_healthy(studio, 90)
        yield studio
    finally:
        studio.stop()


def open_ws(studio: Studio, host: str, headers: dict[str, str] | None = None) -> Any:
    """A WebSocket whose request says ``Host: host``, connected to 127.0.0.1."""
    sock = socket.create_connection(("127.0.0.1", studio.port), timeout=10)
    return ws_connect(f"ws://{host}{STREAM}", sock=sock, additional_headers=headers, open_timeout=10)


def test_the_config_binds_loopback_and_lists_the_allowed_hosts() -> None:
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))["server"]
    assert server["address"] == "127.0.0.1"
    assert set(server["allowedHosts"]) == {"localhost", "127.0.0.1", "::1"}
    assert server["enableCORS"] is True and server["enableXsrfProtection"] is True


def test_it_listens_on_loopback_only(dashboard: Studio) -> None:
    assert httpx.get(f"{dashboard.url}/_stcore/health", timeout=10).status_code == 200
    with pytest.raises(OSError):  # 127.0.0.2 is this machine too: only a 0.0.0.0 bind answers there
        socket.create_connection(("127.0.0.2", dashboard.port), timeout=5).close()


# (case, Host, extra headers, expected: None = opens, else the refusal's HTTP status)
CASES: list[tuple[str, str, dict[str, str], int | None]] = [
    ("its own address", "127.0.0.1:{port}", {"Origin": "http://127.0.0.1:{port}"}, None),
    ("localhost", "localhost:{port}", {"Origin": "http://localhost:{port}"}, None),
    ("no Origin (not a browser)", "127.0.0.1:{port}", {}, None),
    ("a rebinding name, same-origin page", "evil.example:{port}", {"Origin": "http://evil.example:{port}"}, 403),
    ("a rebinding name, no Origin", "evil.example:{port}", {}, 403),
    ("a foreign page", "127.0.0.1:{port}", {"Origin": "http://evil.example"}, 403),
    ("a sandboxed page", "127.0.0.1:{port}", {"Origin": "null"}, 403),
]


@pytest.mark.parametrize(("host", "headers", "refused"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_websocket_refuses_foreign_hosts_and_origins(
    dashboard: Studio, host: str, headers: dict[str, str], refused: int | None
) -> None:
    port = dashboard.port
    host = host.format(port=port)
    headers = {k: v.format(port=port) for k, v in headers.items()}
    if refused is None:
        with open_ws(dashboard, host, headers) as ws:
            assert ws.protocol.state.name == "OPEN"
        return
    with pytest.raises(InvalidStatus) as caught, open_ws(dashboard, host, headers) as ws:
        ws.recv(timeout=5)
    assert caught.value.response.status_code == refused


def test_the_page_gives_a_foreign_origin_no_cors_header(dashboard: Studio) -> None:
    """The page is Streamlit's static shell; without an allow header a foreign page cannot read it anyway."""
    response = httpx.get(f"{dashboard.url}/", headers={"Origin": "http://evil.example"}, timeout=10)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
