"""The API is safe on its default bind: Host, Origin and Content-Type rules, limits, offline /docs, SSE 204.

Against real uvicorn servers (``python -m engine.api``), with raw requests
standing in for what a hostile web page's browser sends: a foreign ``Host``
(DNS rebinding), a foreign ``Origin`` (any page the user visits), a
``text/plain`` body (a CORS "simple request", sent without a preflight).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.integration.test_api import (
    REPO,
    STREAM_TIMEOUT,
    Gates,
    Server,
    assert_complete,
    at_gate,
    check_frame,
    example_doc,
    follow_sse,
    free_port,
    gated_workflow,
    parse_sse,
    read_until,
    server_env,
    start_run,
    start_server,
)

TOKEN = "guards-token-0123456789"
EVIL = "http://evil.example"
UI = "http://ui.example:8080"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default: 127.0.0.1, no token, no CORS."""
    server = start_server(tmp_path_factory.mktemp("guards"), OFFLINE_TOKEN_DELAY_S="0")
    yield server
    assert server.stop() == 0, server.log.read_text()[-3000:]
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Shared on purpose: 127.0.0.2 (standing in for a LAN address), a token, extra names and one page origin."""
    server = start_server(
        tmp_path_factory.mktemp("shared"),
        host="127.0.0.2",
        API_TOKEN=TOKEN,
        API_ALLOWED_HOSTS="studio.internal, *.lan",
        API_CORS_ORIGINS=UI,
        OFFLINE_TOKEN_DELAY_S="0",
    )
    yield server
    server.stop()


def run_count(server: Server) -> int:
    with server.client() as client:
        return len(client.get("/runs", params={"limit": 1000}).json())


def ws_open(server: Server, path: str, host: str | None = None, headers: dict[str, str] | None = None) -> Any:
    """A WebSocket to ``server`` whose request says ``Host: host`` (connected to the server's address).

    ``max_queue=None``: the client reads every frame even when a test leaves events unread. With the default
    queue of 16 its reader stops at a full queue, never sees the server's close frame, and leaving the
    ``with`` waited out the 10 s close timeout (30 s of this file's run).
    """
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return ws_connect(
        f"ws://{host or f'{server.host}:{server.port}'}{path}",
        sock=sock,
        additional_headers=headers,
        open_timeout=10,
        max_queue=None,
    )


# --------------------------------------------------------------------------- Host


# (case, Host header, expected status on the default server)
HOSTS: list[tuple[str, str, int]] = [
    ("127.0.0.1 with the port", "127.0.0.1:{port}", 200),
    ("localhost, another port (a proxy)", "localhost:1", 200),
    ("localhost upper case, no port", "LOCALHOST", 200),
    ("IPv6 loopback", "[::1]:{port}", 200),
    ("a rebinding name", "evil.example:{port}", 400),
    ("a name that starts like loopback", "127.0.0.1.evil.example", 400),
    ("localhost as a subdomain", "localhost.evil.example:{port}", 400),
    ("credentials in Host", "user@localhost:{port}", 400),
    ("a port that is not a number", "localhost:http", 400),
    ("empty", "", 400),
    ("127.0.0.2 is not the bound address here", "127.0.0.2:{port}", 400),
]


@pytest.mark.parametrize(("host", "status"), [c[1:] for c in HOSTS], ids=[c[0] for c in HOSTS])
def test_only_loopback_names_and_the_bound_address_are_served(api: Server, host: str, status: int) -> None:
    header = host.format(port=api.port)
    for method, path in (("GET", "/runs"), ("GET", "/health"), ("GET", "/openapi.json")):
        response = httpx.request(method, f"{api.url}{path}", headers={"Host": header}, timeout=10)
        assert response.status_code == status, (path, response.text)
        if status == 400:
            assert "API_ALLOWED_HOSTS" in response.json()["detail"]
    posted = httpx.post(f"{api.url}/runs", json={"workflow": example_doc()}, headers={"Host": header}, timeout=10)
    assert posted.status_code == (202 if status == 200 else 400), posted.text


def test_a_websocket_under_a_foreign_host_is_refused_before_any_event(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    follow_sse(api, run_id)
    with (
        pytest.raises(InvalidStatus) as refused,
        ws_open(api, f"/runs/{run_id}/ws", host=f"evil.example:{api.port}") as ws,
    ):
        ws.recv(timeout=5)
    assert refused.value.response.status_code == 400
    with ws_open(api, f"/runs/{run_id}/ws", host=f"localhost:{api.port}") as ws:
        assert json.loads(ws.recv(timeout=10))["seq"] == 1


SHARED_HOSTS: list[tuple[str, str, int]] = [
    ("the bound address", "127.0.0.2:{port}", 200),
    ("loopback names still", "localhost:{port}", 200),
    ("a name in API_ALLOWED_HOSTS", "studio.internal:{port}", 200),
    ("a name under a *. pattern", "box.lan", 200),
    ("the bare suffix of a *. pattern", "lan", 400),
    ("another name", "studio.internal.evil.example", 400),
]


@pytest.mark.parametrize(("host", "status"), [c[1:] for c in SHARED_HOSTS], ids=[c[0] for c in SHARED_HOSTS])
def test_api_allowed_hosts_adds_names(shared_api: Server, host: str, status: int) -> None:
    header = host.format(port=shared_api.port)
    with httpx.Client(base_url=shared_api.url, headers={**shared_api.headers, "Host": header}, timeout=10) as client:
        assert client.get("/runs").status_code == status
        assert client.get("/health").status_code == status  # /health needs no token, but the Host rule holds


# --------------------------------------------------------------------------- Origin


def test_a_foreign_page_cannot_start_a_run_plant_a_workflow_or_cancel(api: Server, tmp_path: Path) -> None:
    """The issue's attack: any page POSTs a run as text/plain from its own origin. Nothing happens."""
    before = run_count(api)
    doc = {**example_doc(), "name": "Planted by a web page"}
    for body, content_type in ((json.dumps({"workflow": doc}), "text/plain"), (json.dumps({"workflow": doc}), None)):
        headers = {"Origin": EVIL, **({"Content-Type": content_type} if content_type else {})}
        assert httpx.post(f"{api.url}/runs", content=body, headers=headers, timeout=10).status_code == 403
    for origin in (EVIL, "null", f"http://localhost:{api.port + 1}", f"https://127.0.0.1:{api.port}"):
        response = httpx.post(f"{api.url}/runs", json={"workflow": doc}, headers={"Origin": origin}, timeout=10)
        assert response.status_code == 403, (origin, response.text)
        assert "API_CORS_ORIGINS" in response.json()["detail"]
    response = httpx.post(f"{api.url}/workflows", json=doc, headers={"Origin": EVIL}, timeout=10)
    assert response.status_code == 403
    gates = Gates(tmp_path, "origin-cancel")
    run_id = start_run(api, {"workflow": gated_workflow(), "inputs": gates.inputs})
    try:
        cancel = httpx.post(f"{api.url}/runs/{run_id}/cancel", headers={"Origin": EVIL}, timeout=10)
        assert cancel.status_code == 403
        assert httpx.get(f"{api.url}/runs/{run_id}", timeout=10).json()["status"] == "running"
    finally:
        gates.open_all()
    assert_complete(follow_sse(api, run_id))
    with api.client() as client:
        assert "Planted by a web page" not in {w["name"] for w in client.get("/workflows").json()}
    assert run_count(api) == before + 1  # only the gated run of this test


def test_same_origin_and_no_origin_are_served(api: Server) -> None:
    """Tools send no Origin; /docs ("Try it out") sends the API's own origin."""
    here = f"localhost:{api.port}"
    for headers in ({}, {"Origin": api.url}, {"Origin": f"http://{here}", "Host": here}):
        response = httpx.post(f"{api.url}/runs", json={"workflow": example_doc()}, headers=headers, timeout=10)
        assert response.status_code == 202, (headers, response.text)
    other = {"Origin": f"http://{here}"}  # the page is on localhost, the request goes to 127.0.0.1: not the same
    assert httpx.post(f"{api.url}/runs", json={"workflow": example_doc()}, headers=other).status_code == 403
    # Reading is not refused, but no CORS header lets a foreign page see the answer.
    response = httpx.get(f"{api.url}/runs", headers={"Origin": EVIL}, timeout=10)
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_a_websocket_from_a_foreign_page_is_refused_before_any_event(api: Server, shared_api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    events = follow_sse(api, run_id)
    for origin in (EVIL, "null"):
        with (
            pytest.raises(InvalidStatus) as refused,
            ws_open(api, f"/runs/{run_id}/ws", headers={"Origin": origin}) as ws,
        ):
            ws.recv(timeout=5)
        assert refused.value.response.status_code == 403
    with ws_open(api, f"/runs/{run_id}/ws", headers={"Origin": api.url}) as ws:  # same origin
        assert json.loads(ws.recv(timeout=10)) == events[0]
    # Shared on purpose: the token does not let a foreign page in; an origin in API_CORS_ORIGINS may.
    shared_run = start_run(shared_api, {"workflow": example_doc()})
    path = f"/runs/{shared_run}/ws?token={TOKEN}"
    with pytest.raises(InvalidStatus) as refused, ws_open(shared_api, path, headers={"Origin": EVIL}) as ws:
        ws.recv(timeout=5)
    assert refused.value.response.status_code == 403
    with ws_open(shared_api, path, headers={"Origin": UI}) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "run.started"


# --------------------------------------------------------------------------- Content-Type


# (case, Content-Type or None, expected status for a valid run request)
CONTENT_TYPES: list[tuple[str, str | None, int]] = [
    ("application/json", "application/json", 202),
    ("with a charset", "application/json; charset=utf-8", 202),
    ("upper case", "Application/JSON", 202),
    ("text/plain (a CORS simple request)", "text/plain", 415),
    ("a form (curl -d)", "application/x-www-form-urlencoded", 415),
    ("multipart", "multipart/form-data; boundary=x", 415),
    ("none", None, 415),
    ("json-ish", "application/json-patch+json", 415),
]


@pytest.mark.parametrize(("content_type", "status"), [c[1:] for c in CONTENT_TYPES], ids=[c[0] for c in CONTENT_TYPES])
def test_a_body_must_be_sent_as_application_json(api: Server, content_type: str | None, status: int) -> None:
    body = json.dumps({"workflow": example_doc()}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    before = run_count(api)
    response = httpx.post(f"{api.url}/runs", content=body, headers=headers, timeout=10)
    assert response.status_code == status, response.text
    if status == 415:
        assert "application/json" in response.json()["detail"]
        assert run_count(api) == before
        assert httpx.post(f"{api.url}/workflows", content=body, headers=headers, timeout=10).status_code == 415


def test_requests_without_a_body_need_no_content_type(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    follow_sse(api, run_id)
    assert httpx.post(f"{api.url}/runs/{run_id}/cancel", timeout=10).status_code == 200
    assert httpx.post(f"{api.url}/runs/{run_id}/resume", timeout=10).status_code == 409


# --------------------------------------------------------------------------- SSE on a finished run


def test_sse_on_a_finished_run_with_nothing_left_is_204_so_browsers_stop_reconnecting(
    api: Server, tmp_path: Path
) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    events = follow_sse(api, run_id)
    last = events[-1]["seq"]
    accept = {"Accept": "text/event-stream"}
    with httpx.Client(base_url=api.url, timeout=STREAM_TIMEOUT) as client:
        # What EventSource does after the stream ended: reconnect with the last id it saw.
        assert client.get(f"/runs/{run_id}/events", headers={**accept, "Last-Event-ID": str(last)}).status_code == 204
        assert client.get(f"/runs/{run_id}/events", params={"after": last}, headers=accept).status_code == 204
        assert client.get(f"/runs/{run_id}/events", params={"after": last + 5}, headers=accept).status_code == 204
        rest = client.get(f"/runs/{run_id}/events", headers={**accept, "Last-Event-ID": str(last - 1)})
        assert rest.status_code == 200 and [m["id"] for m in parse_sse(iter(rest.text.splitlines()))] == [last]
        # JSON is unchanged: an empty list.
        assert client.get(f"/runs/{run_id}/events", params={"after": last}).json() == []
    # A running run with nothing new yet keeps the stream open (and sends what comes).
    gates = Gates(tmp_path, "sse-204")
    running = start_run(api, {"workflow": gated_workflow(), "inputs": gates.inputs})
    with httpx.Client(timeout=STREAM_TIMEOUT) as client:
        with client.stream("GET", f"{api.url}/runs/{running}/events", headers=accept) as response:
            seen = read_until(parse_sse(response.iter_lines()), at_gate("gate1"))
        with client.stream(
            "GET", f"{api.url}/runs/{running}/events", headers={**accept, "Last-Event-ID": str(seen[-1]["seq"])}
        ) as response:
            assert response.status_code == 200
            gates.open_all()
            rest = [check_frame(m) for m in parse_sse(response.iter_lines())]
    assert_complete(seen + rest)


# --------------------------------------------------------------------------- /docs offline


def test_docs_use_only_assets_the_api_serves(api: Server) -> None:
    with api.client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200
            assert "://" not in html.text, re.findall(r"\S*://\S*", html.text)  # nothing from another host
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
            assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
            for asset in assets:
                response = client.get(asset)
                assert response.status_code == 200 and len(response.content) > 1000, asset
                if asset.endswith(".js"):
                    assert "javascript" in response.headers["content-type"]
        swagger = client.get("/docs").text
        assert "url: '/openapi.json'" in swagger and "/docs/assets/swagger-ui-bundle.js" in swagger
        bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
        assert "SwaggerUIBundle" in bundle


# --------------------------------------------------------------------------- connections


def test_half_open_connections_are_closed_and_streams_are_not(tmp_path: Path) -> None:
    """Silent connections, unfinished headers and bodies that stop arriving are closed after API_CONN_TIMEOUT_S;
    a live stream is not cut by it."""
    server = start_server(tmp_path / "srv", API_CONN_TIMEOUT_S="1", OFFLINE_TOKEN_DELAY_S="0")
    sockets: list[socket.socket] = []
    try:
        stalled_body = (
            b"POST /workflows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n[1, 2"
        )
        for index in range(300):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            if index % 3 == 1:
                sock.sendall(b"GET /runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and never the blank line
            elif index % 3 == 2:
                sock.sendall(stalled_body)  # ... and never the other 95 bytes
            sockets.append(sock)
        gates = Gates(tmp_path, "long-stream")
        run_id = start_run(server, {"workflow": gated_workflow(), "inputs": gates.inputs})
        accept = {"Accept": "text/event-stream"}
        with (
            httpx.Client(timeout=STREAM_TIMEOUT) as client,
            client.stream("GET", f"{server.url}/runs/{run_id}/events", headers=accept) as response,
        ):
            messages = parse_sse(response.iter_lines())
            seen = read_until(messages, at_gate("gate1"))
            time.sleep(2.5)  # past the timeout, with the stream idle but for keep-alive comments
            closed = sum(_closed_by_server(sock) for sock in sockets)
            gates.open_all()
            seen += [check_frame(m) for m in messages]
        assert_complete(seen)
        assert closed == len(sockets), f"{len(sockets) - closed} of {len(sockets)} half-open connections still open"
    finally:
        for sock in sockets:
            sock.close()
        assert server.stop() == 0, server.log.read_text()[-3000:]


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (after an answer such as 408, or none)."""
    sock.settimeout(0.5)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        return True
    return True


def test_over_api_max_connections_new_requests_get_503_until_some_close(tmp_path: Path) -> None:
    server = start_server(tmp_path / "srv", API_MAX_CONNECTIONS="10", API_CONN_TIMEOUT_S="60")
    idle: list[socket.socket] = []
    try:
        idle = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(12)]
        time.sleep(0.3)
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 503
        for sock in idle:
            sock.close()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        for sock in idle:
            sock.close()
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("name", "value"), [("API_CONN_TIMEOUT_S", "0"), ("API_MAX_CONNECTIONS", "many"), ("API_CONN_TIMEOUT_S", "-1")]
)
def test_bad_limits_are_one_line_and_exit_2(tmp_path: Path, name: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.api", "--port", str(free_port("127.0.0.1"))],
        cwd=REPO,
        env=server_env(tmp_path, **{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}={value!r} must be a number of"), result.stderr


# --------------------------------------------------------------------------- binding


def test_a_busy_port_is_one_line_exit_2_and_nothing_is_announced(api: Server, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "serve", "--port", str(api.port)],
        cwd=REPO,
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    expected = f"cannot serve on 127.0.0.1:{api.port}: the port is in use (another server?); choose one with --port"
    assert lines == [expected]
    assert result.stdout == ""


def test_the_server_is_announced_only_once_it_listens(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--port", str(port)],
        cwd=REPO,
        env=server_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while "API on http://127.0.0.1" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200  # no retry needed
        assert "hosts: localhost, 127.0.0.1, ::1" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
