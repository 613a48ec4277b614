"""The HTTP API against a real uvicorn server (issue: HTTP API with live event streams).

Each server is a subprocess (``python -m engine.api``) on a free loopback
port, with its own ``DATA_DIR``, no ``OPENAI_*`` variables (agents use the
offline model) and ``OFFLINE_TOKEN_DELAY_S=0.02`` so example runs last about
a second. Runs that must pause at a known point use a tool registered in the
server through ``TOOLS_MODULES``: ``api_test_gate`` waits until a file exists,
so the test decides when the run goes on (and so when a client is "mid-run").
Clients are ``httpx`` (JSON and SSE) and ``websockets`` (WebSocket).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect as ws_connect

from engine import WorkflowInvalid, load_workflow
from engine.runtime import Runtime
from engine.store import Store

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "research_assistant.json"
TOKEN = "test-token-0123456789"
STARTUP_S = 30
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

GATE_MODULE = '''
import asyncio
import os

from tools import tool


@tool(name="api_test_gate", timeout_s=120, replace=True)
async def api_test_gate(path: str) -> str:
    """Wait until the file at path exists."""
    while not os.path.exists(path):
        await asyncio.sleep(0.01)
    return "opened"
'''


def gated_workflow(name: str = "API gated run") -> dict[str, Any]:
    """start -> writer (agent) -> gate1 -> editor (agent) -> gate2 -> out; gate paths are inputs."""
    return {
        "format": "workflow/v1",
        "name": name,
        "inputs": {"gate1": {"type": "string"}, "gate2": {"type": "string"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "writer", "type": "agent", "config": {"prompt": "Write two sentences about rivers."}},
            {
                "id": "gate1",
                "type": "tool",
                "config": {"tool": "api_test_gate", "args": {"path": "{{ inputs.gate1 }}"}},
            },
            {"id": "editor", "type": "agent", "config": {"prompt": "Shorten: {{ nodes.writer.output }}"}},
            {
                "id": "gate2",
                "type": "tool",
                "config": {"tool": "api_test_gate", "args": {"path": "{{ inputs.gate2 }}"}},
            },
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.editor.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "writer"},
            {"source": "writer", "target": "gate1"},
            {"source": "gate1", "target": "editor"},
            {"source": "editor", "target": "gate2"},
            {"source": "gate2", "target": "out"},
        ],
    }


# --------------------------------------------------------------------------- servers


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "API_"))}
    plugins = root / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "api_test_gate_tools.py").write_text(textwrap.dedent(GATE_MODULE), encoding="utf-8")
    env.update(
        DATA_DIR=str(root / "data"),
        OFFLINE_TOKEN_DELAY_S="0.02",
        TOOLS_MODULES="api_test_gate_tools",
        PYTHONPATH=os.pathsep.join(p for p in (str(plugins), str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        API_SSE_KEEPALIVE_S="0.3",
        API_MAX_BODY_BYTES=str(64 * 1024),
    )
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


@dataclass
class Server:
    host: str
    port: int
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", STREAM_TIMEOUT)
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


def start_server(root: Path, host: str = "127.0.0.1", *, first_on_path: Path | None = None, **env: str) -> Server:
    """Start ``python -m engine.api``; ``first_on_path`` shadows the project's packages (run from ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    log = root / "server.log"
    environment = server_env(root, **env)
    if first_on_path is not None:
        environment["PYTHONPATH"] = os.pathsep.join((str(first_on_path), environment["PYTHONPATH"]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.api", "--host", host, "--port", str(port), "--log-level", "info"],
        cwd=REPO if first_on_path is None else root,
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(host, port, root, proc, log, env.get("API_TOKEN"))
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"the server did not answer /health within {STARTUP_S} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("api"))
    yield server
    assert server.stop() == 0, server.log.read_text()[-3000:]  # SIGTERM: a clean shutdown, exit 0
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def secure_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Bound to 127.0.0.2, standing in for a non-loopback address: the token is required."""
    server = start_server(
        tmp_path_factory.mktemp("secure"), host="127.0.0.2", API_TOKEN=TOKEN, OFFLINE_TOKEN_DELAY_S="0"
    )
    yield server
    server.stop()


# --------------------------------------------------------------------------- client helpers


def parse_sse(lines: Iterator[str], on_comment: Any = None) -> Iterator[dict[str, Any]]:
    """SSE messages as {"id", "event", "data"}; comments go to ``on_comment``."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield {"id": int(fields["id"]), "event": fields.get("event"), "data": json.loads(fields["data"])}
            fields = {}
        elif line.startswith(":"):
            if on_comment is not None:
                on_comment(line)
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def check_frame(message: dict[str, Any]) -> dict[str, Any]:
    """``id:`` is the seq and ``event:`` the type; returns the event."""
    event = message["data"]
    assert message["id"] == event["seq"]
    assert message["event"] == event["type"]
    return event


def follow_sse(
    server: Server, run_id: str, *, after: int | None = None, last_event_id: int | None = None
) -> list[dict[str, Any]]:
    """Stream to the end (the server closes after the terminal event)."""
    headers = {"Accept": "text/event-stream", **server.headers}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {"after": after} if after is not None else {}
    with (
        httpx.Client(timeout=STREAM_TIMEOUT) as client,
        client.stream("GET", f"{server.url}/runs/{run_id}/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [check_frame(m) for m in parse_sse(response.iter_lines())]


def follow_ws(
    server: Server, run_id: str, *, after: int = 0, query_token: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    url = f"{server.ws_url}/runs/{run_id}/ws?after={after}"
    headers = None
    if server.token and query_token:
        url += f"&token={server.token}"
    elif server.token:
        headers = server.headers
    events = []
    with ws_connect(url, additional_headers=headers, open_timeout=10) as ws:
        try:
            while True:
                events.append(json.loads(ws.recv(timeout=30)))
        except ConnectionClosedOK:
            pass
        code = ws.close_code
    return events, code


def start_run(server: Server, body: dict[str, Any]) -> str:
    with server.client() as client:
        response = client.post("/runs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


def example_doc() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def stored_events(server: Server, run_id: str) -> list[dict[str, Any]]:
    with server.client() as client:
        response = client.get(f"/runs/{run_id}/events")
    assert response.status_code == 200, response.text
    return response.json()


def assert_complete(events: list[dict[str, Any]], terminal: str = "run.completed") -> None:
    """seq 1..N, each once and in order; run.started first; exactly one terminal event, last."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "run.started"
    assert events[-1]["type"] == terminal
    assert [e["type"] for e in events].count(terminal) == 1


class Gates:
    def __init__(self, root: Path, name: str):
        self.one = root / f"{name}.gate1"
        self.two = root / f"{name}.gate2"

    @property
    def inputs(self) -> dict[str, str]:
        return {"gate1": str(self.one), "gate2": str(self.two)}

    def open_all(self) -> None:
        self.one.touch()
        self.two.touch()


def read_until(messages: Iterator[dict[str, Any]], predicate: Any) -> list[dict[str, Any]]:
    seen = []
    for message in messages:
        seen.append(check_frame(message))
        if predicate(seen[-1]):
            return seen
    raise AssertionError(f"the stream ended before the expected event; got {[(e['seq'], e['type']) for e in seen]}")


def at_gate(which: str) -> Any:
    return lambda e: e["type"] == "tool.called" and e["node_id"] == which


# --------------------------------------------------------------------------- basics


def test_health_docs_and_tools(api: Server) -> None:
    with api.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        schema = client.get("/openapi.json").json()
        assert {"/runs", "/runs/{run_id}", "/runs/{run_id}/events", "/workflows", "/tools", "/memory/agents"} <= set(
            schema["paths"]
        )
        assert client.get("/docs").status_code == 200
        tools = client.get("/tools").json()
    reader = next(t for t in tools if t["name"] == "file_reader")
    assert reader["description"] and reader["parameters"]["type"] == "object"
    assert "api_test_gate" in {t["name"] for t in tools}  # plugins load in the server too


def test_the_workflow_body_is_documented_with_the_schema_generated_from_the_models(api: Server) -> None:
    """POST /workflows' body in /openapi.json is engine.workflow_schema's (node configs checked by type)."""
    import jsonschema

    with api.client() as client:
        openapi = client.get("/openapi.json").json()
    body = openapi["paths"]["/workflows"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    checker = jsonschema.Draft202012Validator(body)
    for path in sorted((REPO / "examples").glob("*.json")):
        assert checker.is_valid(json.loads(path.read_text())), path.name
    agent_without_prompt = {"format": "workflow/v1", "name": "x", "nodes": [{"id": "a", "type": "agent"}]}
    assert not checker.is_valid(agent_without_prompt)  # the hand-written schema let any node through
    assert not checker.is_valid({**example_doc(), "nodez": []})


def test_follow_example_run_by_sse(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc(), "inputs": {"query": "Is tea better than coffee?"}})
    events = follow_sse(api, run_id)
    assert_complete(events)
    assert {e["run_id"] for e in events} == {run_id}
    assert any(e["type"] == "llm.token" for e in events)
    assert events == stored_events(api, run_id)
    with api.client() as client:
        run = client.get(f"/runs/{run_id}").json()
    assert run["status"] == "completed"
    assert run["inputs"] == {"query": "Is tea better than coffee?"}
    assert run["result"] == events[-1]["data"]["result"]
    assert run["error"] is None and run["finished_at"] >= run["started_at"]
    assert run["total_tokens"] == run["prompt_tokens"] + run["completion_tokens"] > 0
    assert run["tokens_estimated"] is False and run["failed_tokens"] == 0  # the offline model's counts are exact
    # After the end, a new stream replays the stored events and closes; `after` skips.
    assert follow_sse(api, run_id) == events
    assert follow_sse(api, run_id, after=40) == events[40:]


def test_follow_example_run_by_websocket(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    events, code = follow_ws(api, run_id)
    assert_complete(events)
    assert code == 1000
    assert events == stored_events(api, run_id)
    later, _ = follow_ws(api, run_id, after=len(events) - 3)
    assert later == events[-3:]


# --------------------------------------------------------------------------- streams mid-run


def test_sse_reconnect_with_last_event_id_has_no_gap_and_no_duplicate(api: Server, tmp_path: Path) -> None:
    gates = Gates(tmp_path, "reconnect")
    run_id = start_run(api, {"workflow": gated_workflow(), "inputs": gates.inputs})
    headers = {"Accept": "text/event-stream"}
    with httpx.Client(timeout=STREAM_TIMEOUT) as client:
        with client.stream("GET", f"{api.url}/runs/{run_id}/events", headers=headers) as response:
            first = read_until(parse_sse(response.iter_lines()), at_gate("gate1"))
        # Dropped mid-run. Events happen while no client listens: gate1 opens, the editor streams.
        gates.one.touch()
        deadline = time.monotonic() + 20
        while not any(e["node_id"] == "gate2" and e["type"] == "tool.called" for e in stored_events(api, run_id)):
            assert time.monotonic() < deadline, "the run did not reach gate2"
            time.sleep(0.05)
        # Reconnect: Last-Event-ID wins over `after`; the backlog, then live events after gate2 opens.
        headers["Last-Event-ID"] = str(first[-1]["seq"])
        with client.stream("GET", f"{api.url}/runs/{run_id}/events", params={"after": 0}, headers=headers) as response:
            messages = parse_sse(response.iter_lines())
            second = read_until(messages, at_gate("gate2"))
            gates.two.touch()
            second += [check_frame(m) for m in messages]
    assert second[0]["seq"] == first[-1]["seq"] + 1
    events = first + second
    assert_complete(events)
    assert events == stored_events(api, run_id)


def test_twenty_concurrent_sse_clients_get_identical_complete_sequences(api: Server, tmp_path: Path) -> None:
    gates = Gates(tmp_path, "twenty")
    run_id = start_run(api, {"workflow": gated_workflow(), "inputs": gates.inputs})
    clients = 20
    all_at_gate = threading.Barrier(clients + 1, timeout=30)

    def listen(index: int) -> list[dict[str, Any]]:
        headers = {"Accept": "text/event-stream"}
        with (
            httpx.Client(timeout=STREAM_TIMEOUT) as client,
            client.stream("GET", f"{api.url}/runs/{run_id}/events", headers=headers) as response,
        ):
            messages = parse_sse(response.iter_lines())
            events = read_until(messages, at_gate("gate1"))
            all_at_gate.wait()
            return events + [check_frame(m) for m in messages]

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(listen, i) for i in range(clients)]
        all_at_gate.wait()  # every client is connected and mid-run: the rest arrives live
        gates.open_all()
        results = [f.result(timeout=60) for f in futures]
    assert_complete(results[0])
    assert all(r == results[0] for r in results)
    assert results[0] == stored_events(api, run_id)


def test_sse_sends_keepalive_comments_while_idle(api: Server, tmp_path: Path) -> None:
    gates = Gates(tmp_path, "idle")
    run_id = start_run(api, {"workflow": gated_workflow(), "inputs": gates.inputs})
    comments: list[str] = []
    with httpx.Client(timeout=STREAM_TIMEOUT) as client, client.stream(
        "GET", f"{api.url}/runs/{run_id}/events", headers={"Accept": "text/event-stream"}
    ) as response:
        messages = parse_sse(response.iter_lines(), on_comment=comments.append)
        read_until(messages, at_gate("gate1"))
        before = len(comments)
        deadline = time.monotonic() + 10
        opener = threading.Timer(1.2, gates.open_all)  # idle for 1.2 s (keep-alive every 0.3 s here)
        opener.start()
        rest = [check_frame(m) for m in messages]
        opener.join()
    assert time.monotonic() < deadline
    assert len(comments) - before >= 2, comments
    assert rest[-1]["type"] == "run.completed"


def test_cancel_through_the_api(api: Server, tmp_path: Path) -> None:
    gates = Gates(tmp_path, "cancel")
    run_id = start_run(api, {"workflow": gated_workflow(), "inputs": gates.inputs})
    with httpx.Client(timeout=STREAM_TIMEOUT) as client:
        with client.stream(
            "GET", f"{api.url}/runs/{run_id}/events", headers={"Accept": "text/event-stream"}
        ) as response:
            messages = parse_sse(response.iter_lines())
            events = read_until(messages, at_gate("gate1"))
            cancel = client.post(f"{api.url}/runs/{run_id}/cancel")
            events += [check_frame(m) for m in messages]
        assert cancel.status_code == 202, cancel.text
        assert_complete(events, terminal="run.cancelled")
        run = client.get(f"{api.url}/runs/{run_id}").json()
        assert run["status"] == "cancelled"
        again = client.post(f"{api.url}/runs/{run_id}/cancel")
        assert again.status_code == 200 and again.json() == {"run_id": run_id, "status": "cancelled"}
        assert client.get(f"{api.url}/runs/{run_id}").json()["status"] == "cancelled"
        assert client.post(f"{api.url}/runs/no-such-run/cancel").status_code == 404


# --------------------------------------------------------------------------- shared store


def wait_for_row(store: Store, run_id: str, status: str, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        row = store.get_run(run_id)
        if row is not None and row.status == status:
            return row
        assert time.monotonic() < deadline, (
            f"run {run_id} never reached {status} in the store (last: {row and row.status})"
        )
        time.sleep(0.05)


def test_a_run_started_by_the_api_is_visible_to_the_dashboards_runtime_and_store(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    events = follow_sse(api, run_id)
    store = Store(data_dir=api.data_dir)
    try:
        row = wait_for_row(store, run_id, "completed")
        assert row.workflow_name == "Research assistant"
        assert run_id in {r.run_id for r in store.list_runs(limit=100)}
        assert [e.to_dict() for e in store.events(run_id)] == events
        workflow = store.get_workflow(row.workflow_id)
        assert workflow is not None and workflow[0].name == "Research assistant"
    finally:
        store.close()
    runtime = Runtime(data_dir=str(api.data_dir))
    try:
        info = runtime.status(run_id)
        assert info is not None and info.status == "completed" and info.result == events[-1]["data"]["result"]
        assert [e.to_dict() for e in runtime.events_since(run_id, 0)] == events
    finally:
        runtime.shutdown()


def test_a_run_started_by_the_dashboards_runtime_streams_through_the_api(
    api: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.02")  # about a second: the API sees it live
    runtime = Runtime(data_dir=str(api.data_dir))
    try:
        run_id = runtime.submit(example_doc())
        deadline = time.monotonic() + 10
        with api.client() as client:
            while client.get(f"/runs/{run_id}").status_code == 404:  # its row is being committed
                assert time.monotonic() < deadline
                time.sleep(0.02)
        events = follow_sse(api, run_id)
        assert_complete(events)
        assert runtime.wait(run_id, timeout=30).status == "completed"
        assert [e.to_dict() for e in runtime.events_since(run_id, 0)] == events
    finally:
        runtime.shutdown()


# --------------------------------------------------------------------------- resume


RESUMABLE_DOC = {
    "format": "workflow/v1",
    "name": "API resume",
    "inputs": {"file": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "read", "type": "tool", "config": {"tool": "file_reader", "args": {"path": "{{ inputs.file }}"}}},
        {"id": "writer", "type": "agent", "config": {"prompt": "Repeat: {{ nodes.read.output.content }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.writer.output }}"}},
    ],
    "edges": [
        {"source": "start", "target": "read"},
        {"source": "read", "target": "writer"},
        {"source": "writer", "target": "out"},
    ],
}


def failed_run(api: Server, name: str) -> tuple[str, list[dict[str, Any]], Path]:
    """A run that failed because its file was missing; the file exists afterwards."""
    run_id = start_run(api, {"workflow": RESUMABLE_DOC, "inputs": {"file": name}})
    events = follow_sse(api, run_id)
    assert_complete(events, terminal="run.failed")
    path = api.data_dir / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("the river is wide", encoding="utf-8")
    return run_id, events, path


def test_stream_of_a_resumed_run_goes_past_its_earlier_terminal_event(api: Server) -> None:
    run_id, before, _ = failed_run(api, "resume-stream.txt")
    with api.client() as client:
        assert client.post(f"/runs/{run_id}/resume").status_code == 202
    events = follow_sse(api, run_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[: len(before)] == before  # the earlier run.failed is part of the log ...
    assert len(events) > len(before)  # ... and the stream did not stop there
    assert events[-1]["type"] in ("run.completed", "run.failed", "run.cancelled")
    assert events == stored_events(api, run_id)


def test_resume_a_failed_run_through_the_api(api: Server) -> None:
    run_id, before, _ = failed_run(api, "resume-ok.txt")
    with api.client() as client:
        assert client.post(f"/runs/{run_id}/resume").status_code == 202
        events = follow_sse(api, run_id)
        run = client.get(f"/runs/{run_id}").json()
    assert events[len(before) - 1]["type"] == "run.failed"
    assert events[-1]["type"] == "run.completed", events[-3:]
    assert run["status"] == "completed"


def test_resume_refuses_runs_that_cannot_be_resumed(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    follow_sse(api, run_id)
    with api.client() as client:
        refused = client.post(f"/runs/{run_id}/resume")
        assert refused.status_code == 409 and "completed" in refused.json()["detail"]
        assert client.post("/runs/no-such-run/resume").status_code == 404


# --------------------------------------------------------------------------- errors


def expected_problems(document: dict[str, Any]) -> list[dict[str, str]]:
    """What ``python -m engine validate`` lists for the document."""
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(document)
    return [{"where": p.where, "message": p.message} for p in caught.value.problems]


def test_an_invalid_workflow_is_a_422_listing_every_problem_and_is_never_saved(api: Server) -> None:
    bad = {
        "format": "workflow/v1",
        "name": "API broken",
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "x", "type": "nope"},
            {"id": "t", "type": "transform", "config": {"expression": "1 +"}},
        ],
        "edges": [{"source": "start", "target": "ghost"}],
        "extra": 1,
    }
    problems = expected_problems(bad)
    assert len(problems) >= 3
    with api.client() as client:
        for path, body in (("/workflows", bad), ("/runs", {"workflow": bad})):
            response = client.post(path, json=body)
            assert response.status_code == 422, response.text
            assert response.json()["problems"] == problems
        assert "API broken" not in {w["name"] for w in client.get("/workflows").json()}
        # A JSON string is a document that is not an object, never a path to read.
        response = client.post("/workflows", json="/etc/passwd")
        assert response.status_code == 422 and response.json()["problems"][0]["where"] == "document"


def test_bad_inputs_are_a_422_naming_them(api: Server, tmp_path: Path) -> None:
    with api.client() as client:
        response = client.post("/runs", json={"workflow": gated_workflow(), "inputs": {"gate1": 3, "colour": "red"}})
    assert response.status_code == 422, response.text
    where = {p["where"] for p in response.json()["problems"]}
    assert where == {"input 'gate1'", "input 'gate2'", "input 'colour'"}


def test_saved_workflows_versions_and_runs_by_id(api: Server) -> None:
    doc = example_doc()
    doc["name"] = "API versions"
    with api.client() as client:
        first = client.post("/workflows", json=doc)
        assert first.status_code == 201, first.text
        wid = first.json()["id"]
        assert first.json()["version"] == 1 and first.json()["created"] is True
        assert client.post("/workflows", json=doc).json() == {**first.json(), "created": False}
        doc["description"] = "changed"
        second = client.post("/workflows", json=doc).json()
        assert second["id"] == wid and second["version"] == 2
        latest = client.get(f"/workflows/{wid}").json()
        assert (
            latest["version"] == 2 and latest["versions"] == [1, 2] and latest["document"]["description"] == "changed"
        )
        assert client.get(f"/workflows/{wid}", params={"version": 1}).json()["document"]["description"] != "changed"
        assert client.get(f"/workflows/{wid}", params={"version": 9}).status_code == 404
        assert client.get("/workflows/unknown").status_code == 404
        assert wid in {w["id"] for w in client.get("/workflows").json()}
        run = client.post("/runs", json={"workflow_id": wid, "inputs": {"query": "q"}})
        assert run.status_code == 202, run.text
        assert client.post("/runs", json={"workflow_id": "unknown"}).status_code == 404
        assert client.post("/runs", json={"workflow_id": wid, "workflow": doc}).status_code == 422
        assert client.post("/runs", json={}).status_code == 422
    events = follow_sse(api, run.json()["run_id"])
    assert_complete(events)
    with api.client() as client:
        listed = client.get("/runs", params={"workflow_id": wid, "status": "completed"}).json()
        assert [r["run_id"] for r in listed] == [run.json()["run_id"]]
        assert listed[0]["workflow_version"] == 2
        assert client.get("/runs", params={"status": "bogus"}).status_code == 422
        assert client.get("/runs", params={"limit": 0}).status_code == 422
        assert len(client.get("/runs", params={"limit": 1}).json()) == 1


def test_unknown_ids_are_404_everywhere(api: Server) -> None:
    with api.client() as client:
        for method, path in (
            ("GET", "/runs/nope"),
            ("GET", "/runs/nope/events"),
            ("POST", "/runs/nope/cancel"),
            ("POST", "/runs/nope/resume"),
            ("GET", "/workflows/nope"),
        ):
            assert client.request(method, path).status_code == 404, path
        response = client.get("/runs/nope/events", headers={"Accept": "text/event-stream"})
        assert response.status_code == 404
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(f"{api.ws_url}/runs/nope/ws", open_timeout=10)
    assert refused.value.response.status_code == 404


def test_bodies_that_are_not_json_or_too_big(api: Server) -> None:
    with api.client() as client:
        for body in (b"{not json", b"", b"\xff\xfe", b"[" * 10_000):
            response = client.post("/runs", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (body[:20], response.text)
        # JSON with parameters in its Content-Type is JSON.
        response = client.post(
            "/runs", content=b'{"workflow_id": "nope"}', headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert response.status_code == 404
        big = {"workflow": example_doc(), "inputs": {"query": "x" * (70 * 1024)}}  # cap here: 64 KiB
        assert client.post("/runs", json=big).status_code == 413
        chunked = client.post(
            "/workflows",
            content=iter([b"[" + b" " * 40_000, b" " * 40_000 + b"]"]),
            headers={"Content-Type": "application/json"},
        )
        assert chunked.status_code == 413  # no Content-Length: counted while reading
        assert client.get(
            "/runs/x/events", headers={"Accept": "text/event-stream", "Last-Event-ID": "abc"}
        ).status_code in (400, 404)
        assert client.get("/runs", params={"limit": "many"}).status_code == 422


def test_last_event_id_must_be_a_seq(api: Server) -> None:
    run_id = start_run(api, {"workflow": example_doc()})
    follow_sse(api, run_id)
    with api.client() as client:
        response = client.get(f"/runs/{run_id}/events", headers={"Accept": "text/event-stream", "Last-Event-ID": "abc"})
    assert response.status_code == 400


# --------------------------------------------------------------------------- memory


def _memory_ready() -> bool:
    try:
        import memory
    except Exception:  # noqa: BLE001
        return False
    return callable(getattr(memory, "list_agents", None))


def test_without_an_importable_memory_package_the_server_starts_and_memory_answers_503(tmp_path: Path) -> None:
    stub = tmp_path / "stub"
    (stub / "memory").mkdir(parents=True)
    (stub / "memory" / "__init__.py").write_text("raise ImportError('memory is being rebuilt')\n", encoding="utf-8")
    server = start_server(tmp_path / "server", first_on_path=stub)
    try:
        with server.client() as client:
            assert client.get("/runs").status_code == 200
            for path in ("/memory/agents", "/memory/someone?query=rivers"):
                response = client.get(path)
                assert response.status_code == 503, response.text
                assert "memory" in response.json()["detail"]
    finally:
        assert server.stop() == 0


@pytest.mark.skipif(not _memory_ready(), reason="memory.list_agents does not exist yet (memory package not landed)")
def test_memory_agents_and_recall(api: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import memory

    # Seed the server's memory (same DATA_DIR) through the package, with provenance.
    monkeypatch.setenv("DATA_DIR", str(api.data_dir))
    memory.reset_default_backends()
    try:
        manager = memory.MemoryManager("api-test-agent")
        manager.add_memories(
            ["Rivers flow downhill into the sea.", "The user's cat is called Miso.", "Invoices are due on Fridays."],
            run_id="run-1",
            node_id="writer",
            workflow="API memory",
        )
    finally:
        memory.reset_default_backends()
    with api.client(timeout=httpx.Timeout(120.0)) as client:
        agents = client.get("/memory/agents")
        assert agents.status_code == 200, agents.text
        assert "api-test-agent" in {a["agent_id"] for a in agents.json()}
        recalled = client.get("/memory/api-test-agent", params={"query": "what is the cat's name?", "k": 2})
        assert recalled.status_code == 200, recalled.text
        body = recalled.json()
        assert body["agent_id"] == "api-test-agent" and body["query"] == "what is the cat's name?"
        assert len(body["hits"]) == 2
        best = body["hits"][0]
        assert "Miso" in best["text"] and 0 <= best["score"] <= 1 and "distance" in best
        assert best["metadata"]["run_id"] == "run-1" and best["metadata"]["node_id"] == "writer"
        listed = client.get("/memory/api-test-agent", params={"k": 10})
        assert listed.status_code == 200 and len(listed.json()["hits"]) == 3
        assert client.get("/memory/nobody-here", params={"query": "x"}).status_code == 404
        assert client.get("/memory/api-test-agent", params={"k": 0}).status_code == 422


# --------------------------------------------------------------------------- token on a non-loopback bind


def test_a_non_loopback_bind_without_api_token_exits_2(tmp_path: Path) -> None:
    port = free_port("127.0.0.2")
    result = subprocess.run(
        [sys.executable, "-m", "engine.api", "--host", "127.0.0.2", "--port", str(port)],
        cwd=REPO,
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "API_TOKEN" in result.stderr


def test_token_is_required_on_a_non_loopback_bind(secure_api: Server) -> None:
    url = secure_api.url
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(f"{url}/health").status_code == 200
    for path in ("/runs", "/workflows", "/tools", "/openapi.json", "/docs", "/runs/nope", "/memory/agents"):
        assert httpx.get(f"{url}{path}").status_code == 401, path
        assert httpx.get(f"{url}{path}", headers=wrong).status_code == 401, path
        assert httpx.get(f"{url}{path}", params={"token": TOKEN}).status_code == 401, path  # header only for HTTP
    missing = httpx.post(f"{url}/runs", json={"workflow": example_doc()})
    assert missing.status_code == 401 and TOKEN not in missing.text
    with secure_api.client() as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/runs").status_code == 200
    run_id = start_run(secure_api, {"workflow": example_doc()})
    events = follow_sse(secure_api, run_id)
    assert_complete(events)
    # WebSocket: refused before any event without a token or with a wrong one ...
    for suffix, headers in (("", None), ("&token=wrong", None), ("", wrong)):
        with pytest.raises(InvalidStatus) as refused, ws_connect(
            f"{secure_api.ws_url}/runs/{run_id}/ws?after=0{suffix}", additional_headers=headers, open_timeout=10
        ) as ws:
            ws.recv(timeout=5)
        assert refused.value.response.status_code == 401
    # ... accepted with the header or ?token=.
    assert follow_ws(secure_api, run_id)[0] == events
    assert follow_ws(secure_api, run_id, query_token=True)[0] == events


def test_access_logs_redact_the_token(secure_api: Server) -> None:
    run_id = start_run(secure_api, {"workflow": example_doc()})
    follow_ws(secure_api, run_id, query_token=True)
    with pytest.raises(InvalidStatus):
        ws_connect(f"{secure_api.ws_url}/runs/{run_id}/ws?token={TOKEN}x", open_timeout=10)
    httpx.get(f"{secure_api.url}/runs", params={"token": TOKEN})
    time.sleep(0.3)
    log = secure_api.log.read_text(encoding="utf-8", errors="replace")
    assert "token=[redacted]" in log
    assert TOKEN not in log


# --------------------------------------------------------------------------- schemathesis


def test_schemathesis_finds_no_server_error(api: Server) -> None:
    """Generated valid and invalid requests for every operation of /openapi.json: never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    skip_memory = not _memory_ready()  # those answer 503 on purpose until the memory package lands
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip_memory and operation.path.startswith("/memory"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=25 if mode is GenerationMode.POSITIVE else 15,  # a few dozen per operation, < 60 s
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def probe(case: Any) -> None:
                response = case.call(base_url=api.url, timeout=10)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                    )

            try:
                probe()
            except Unsatisfiable:  # e.g. no invalid request exists for an operation without parameters
                continue
            checked += 1
    assert checked >= 20
    assert not failures, "\n".join(failures[:10])


def _strict_json(text: str) -> Any:
    """Parse as strict JSON: NaN, Infinity and -Infinity are errors, as in browsers and most languages."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"the API wrote {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null(api: Server) -> None:
    """NaN/Infinity are not JSON: a number input that is one is refused (422, naming it), and a node that
    computes one outputs null, so the API never writes them back."""
    workflow = {
        "format": "workflow/v1",
        "name": "API non-finite numbers",
        "inputs": {"x": {"type": "string"}, "n": {"type": "number", "default": 1}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "parsed", "type": "transform", "config": {"expression": "inputs.x | float * inputs.n"}},
            {"id": "out", "type": "output", "config": {"value": {"parsed": "{{ nodes.parsed.output }}"}}},
        ],
        "edges": [{"source": "start", "target": "parsed"}, {"source": "parsed", "target": "out"}],
    }
    refused = json.dumps({"workflow": workflow, "inputs": {"x": "1", "n": float("-inf")}})
    assert "-Infinity" in refused
    with api.client() as client:
        response = client.post("/runs", content=refused, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert "input 'n'" in response.text and "finite" in response.text
        response = client.post("/runs", json={"workflow": workflow, "inputs": {"x": "nan"}})
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        events = follow_sse(api, run_id)
        assert events[-1]["type"] == "run.completed"
        run = _strict_json(client.get(f"/runs/{run_id}").text)
        stored = _strict_json(client.get(f"/runs/{run_id}/events").text)
    assert run["status"] == "completed"
    assert run["result"] == {"out": {"parsed": None}}
    assert stored[-1]["data"]["result"] == {"out": {"parsed": None}}
