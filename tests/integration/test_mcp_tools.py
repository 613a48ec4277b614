"""Tools of MCP servers (tools/mcp) in a real Runtime: a stdio server and a Streamable HTTP one written with the SDK.

The servers are tests/integration/mcp/server.py in real subprocesses; agents talk to tests/fake_openai.py over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from engine.errors import WorkflowInvalid
from engine.llm.openai_model import OpenAIChatModel
from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer

SERVER = str(Path(__file__).with_name("mcp") / "server.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_http(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, SERVER, "http", str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the HTTP MCP server did not start")


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = _free_port()
    procs = [_start_http(port)]
    yield port, procs
    for proc in procs:
        proc.kill()
        proc.wait()


def _runtime(tmp_path: Path, servers: dict[str, Any], llm: Any = None) -> Runtime:
    config = tmp_path / "mcp-config.json"
    config.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    settings = Settings.from_env({"DATA_DIR": str(tmp_path / "data"), "MCP_CONFIG": str(config), "PATH": os.defpath})
    return Runtime(settings=settings, llm=llm)


def _stdio(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [SERVER, "stdio"],
        "env": {"MCP_TEST_LOG": str(tmp_path / "server.log"), "TEAM_TOKEN": "secret-in-config"},
        **extra,
    }


def _tool_workflow(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": f"calls {tool}",
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "tool", "type": "tool", "config": {"tool": tool, "args": args}},
            {"id": "call", "type": "output", "config": {"value": "{{ nodes.tool.output }}"}},
        ],
        "edges": [{"source": "start", "target": "tool"}, {"source": "tool", "target": "call"}],
    }


def _agent_workflow(tools: list[str]) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "agent with MCP tools",
        "settings": {"model": "test-model"},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "agent", "type": "agent", "config": {"prompt": "Add 2 and 3", "tools": tools, "max_steps": 2}},
        ],
        "edges": [{"source": "start", "target": "agent"}],
    }


def _run(rt: Runtime, workflow: dict[str, Any], timeout: float = 60) -> Any:
    run_id = rt.submit(workflow)
    return rt.wait(run_id, timeout=timeout), run_id


def _results(rt: Runtime, run_id: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in rt.reader.events(run_id) if e.type == "tool.result"]


def test_the_mcp_sdk_loads_only_when_servers_are_configured(tmp_path: Path) -> None:
    """The SDK costs about half a second to import: a CLI command or a runtime without servers must not pay it."""
    code = (
        "import json, sys\n"
        "import engine.cli\n"
        "from engine.config import Settings\n"
        "from engine.runtime import Runtime\n"
        "loaded = ['mcp' in sys.modules]\n"
        "settings = Settings.from_env({'DATA_DIR': sys.argv[1], 'MCP_CONFIG': sys.argv[2]})\n"
        "rt = Runtime(settings=settings)\n"
        "loaded.append('mcp' in sys.modules)\n"
        "rt.shutdown()\n"
        "print(json.dumps(loaded))\n"
    )
    config = tmp_path / "mcp.json"
    for servers, expected in (({}, [False, False]), ({"docs": _stdio(tmp_path)}, [False, True])):
        config.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "data"), str(config)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == expected, servers


def test_tools_of_both_servers_are_listed_with_their_schemas(tmp_path: Path, http_server: Any) -> None:
    port, _ = http_server
    with _runtime(tmp_path, {"t": _stdio(tmp_path), "h": {"url": f"http://127.0.0.1:{port}/mcp"}}) as rt:
        specs = {spec.name: spec for spec in rt.tools.list_tools()}
        for server in ("t", "h"):
            for tool in ("echo", "add", "sleep", "fail", "image"):
                assert f"{server}__{tool}" in specs
        add = specs["t__add"]
        assert add.parameters["properties"].keys() == {"a", "b"} and set(add.parameters["required"]) == {"a", "b"}
        assert add.description.startswith("Add two integers") and "MCP server 't'" in add.description
        assert "calculator" in specs  # the built-in tools stay
        assert rt.mcp is not None and rt.mcp.status() == {"t": None, "h": None}


def test_an_agent_calls_an_mcp_tool_through_tool_calls(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_tool_calls([("t__add", {"a": 2, "b": 3})])
    fake_openai.enqueue_text("It is 5.")
    llm = OpenAIChatModel(base_url=fake_openai.base_url, api_key="k")
    with _runtime(tmp_path, {"t": _stdio(tmp_path)}, llm=llm) as rt:
        info, run_id = _run(rt, _agent_workflow(["t__add"]))
        assert info.status == "completed", info.error
        called = [e.data for e in rt.reader.events(run_id) if e.type == "tool.called"]
        assert called[0]["tool"] == "t__add" and called[0]["args"] == {"a": 2, "b": 3}
        assert _results(rt, run_id)[0]["result"] == "5"
    offered = [t["function"]["name"] for t in fake_openai.requests[0]["tools"]]
    assert offered == ["t__add"]
    tool_message = [m for m in fake_openai.requests[1]["messages"] if m["role"] == "tool"][0]
    assert "5" in tool_message["content"] and "untrusted" in tool_message["content"].lower()


def test_an_agent_may_not_call_an_mcp_tool_it_does_not_list(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_tool_calls([("t__add", {"a": 2, "b": 3})])
    fake_openai.enqueue_text("I may not.")
    llm = OpenAIChatModel(base_url=fake_openai.base_url, api_key="k")
    with _runtime(tmp_path, {"t": _stdio(tmp_path)}, llm=llm) as rt:
        info, run_id = _run(rt, _agent_workflow(["t__echo"]))
        assert info.status == "completed", info.error
        result = _results(rt, run_id)[0]
        assert "not allowed for this agent" in result["error"]
    assert not (tmp_path / "server.log").exists() or "started" not in (tmp_path / "server.log").read_text()


def test_tool_nodes_call_mcp_tools_over_http_and_stdio(tmp_path: Path, http_server: Any) -> None:
    port, _ = http_server
    with _runtime(tmp_path, {"t": _stdio(tmp_path), "h": {"url": f"http://127.0.0.1:{port}/mcp"}}) as rt:
        info, _ = _run(rt, _tool_workflow("h__echo", {"text": "hello {{ 'MCP' }}"}))
        assert info.status == "completed" and info.result["call"] == "hello MCP", info
        info, _ = _run(rt, _tool_workflow("t__image", {}))
        assert info.status == "completed" and info.result["call"].startswith("[image image/png, 70 bytes, not shown]")
        info, run_id = _run(rt, _tool_workflow("h__fail", {"message": "the database is read-only"}))
        assert info.status == "failed" and "the database is read-only" in (info.error or ""), info
        assert "the database is read-only" in _results(rt, run_id)[0]["error"]


def test_a_stdio_server_gets_only_its_configured_env_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-studios-own")
    with _runtime(tmp_path, {"t": _stdio(tmp_path)}) as rt:
        info, _ = _run(rt, _tool_workflow("t__env_keys", {}))
        assert info.status == "completed", info.error
        keys = set(info.result["call"].split("\n\n")) - {"LC_CTYPE"}  # Python's own locale coercion may add it
        assert keys == {"MCP_TEST_LOG", "TEAM_TOKEN", "PATH"}


def test_a_call_past_its_deadline_is_a_tool_error(tmp_path: Path) -> None:
    with _runtime(tmp_path, {"t": _stdio(tmp_path, timeout=1)}) as rt:
        rt.tools.list_tools()  # started before the clock runs
        started = time.monotonic()
        info, _ = _run(rt, _tool_workflow("t__sleep", {"seconds": 30}))
        assert info.status == "failed" and "timed out after 1 s" in (info.error or ""), info
        assert time.monotonic() - started < 15
        info, _ = _run(rt, _tool_workflow("t__echo", {"text": "still here"}))
        assert info.result["call"] == "still here"


def test_cancelling_a_run_cancels_the_mcp_call_promptly(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with _runtime(tmp_path, {"t": _stdio(tmp_path)}) as rt:
        run_id = rt.submit(_tool_workflow("t__sleep", {"seconds": 60}))
        deadline = time.monotonic() + 30
        while not (log.exists() and "started" in log.read_text()):
            assert time.monotonic() < deadline, "the server never saw the call"
            time.sleep(0.05)
        asked = time.monotonic()
        assert rt.cancel(run_id)
        info = rt.wait(run_id, timeout=20)
        assert info.status == "cancelled" and time.monotonic() - asked < 5
        info, _ = _run(rt, _tool_workflow("t__add", {"a": 1, "b": 1}))
        assert info.result["call"] == "2"  # the session is still usable


def test_a_server_that_crashes_mid_call_fails_the_call_and_is_restarted(tmp_path: Path) -> None:
    with _runtime(tmp_path, {"t": _stdio(tmp_path)}) as rt:
        first, _ = _run(rt, _tool_workflow("t__pid", {}))
        crashed, _ = _run(rt, _tool_workflow("t__crash", {}))
        assert crashed.status == "failed" and "went away during the call" in (crashed.error or ""), crashed
        again, _ = _run(rt, _tool_workflow("t__pid", {}))
        assert again.status == "completed", again.error
        assert again.result["call"] != first.result["call"]  # a new process


def test_an_http_session_is_opened_again_after_the_server_restarted(tmp_path: Path, http_server: Any) -> None:
    port, procs = http_server
    with _runtime(tmp_path, {"h": {"url": f"http://127.0.0.1:{port}/mcp"}}) as rt:
        assert _run(rt, _tool_workflow("h__add", {"a": 1, "b": 2}))[0].result["call"] == "3"
        procs[0].kill()
        procs[0].wait()
        procs.append(_start_http(port))  # the old session id means nothing to the new server
        info, _ = _run(rt, _tool_workflow("h__add", {"a": 2, "b": 2}))
        assert info.status == "completed" and info.result["call"] == "4", info.error


def test_unknown_and_unavailable_mcp_tools_are_validation_errors_naming_the_server(tmp_path: Path) -> None:
    servers = {"t": _stdio(tmp_path), "down": {"command": str(tmp_path / "no-such-server")}}
    with _runtime(tmp_path, servers) as rt:
        with pytest.raises(WorkflowInvalid) as unknown:
            rt.submit(_tool_workflow("t__nope", {}))
        assert "MCP server 't' has no tool 'nope'" in str(unknown.value)
        with pytest.raises(WorkflowInvalid) as down:
            rt.submit(_agent_workflow(["down__query"]))
        assert "MCP server 'down' is down" in str(down.value)


def test_no_server_process_outlives_the_runtime(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, {"t": _stdio(tmp_path)})
    info, _ = _run(rt, _tool_workflow("t__pid", {}))
    pid = int(info.result["call"])
    os.kill(pid, 0)  # running
    rt.shutdown()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"MCP server process {pid} outlived the runtime"
        time.sleep(0.05)


def test_get_tools_lists_the_mcp_tools_with_their_schemas(tmp_path: Path) -> None:
    import threading

    import httpx
    import uvicorn

    from engine.api.app import create_app

    with _runtime(tmp_path, {"t": _stdio(tmp_path)}) as rt:
        server = uvicorn.Server(uvicorn.Config(create_app(rt, token=None), log_level="warning"))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                listed = {t["name"]: t for t in client.get("/tools").json()}
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()
    assert listed["t__echo"]["parameters"]["properties"]["text"]["type"] == "string"
    assert "calculator" in listed


def test_a_server_down_at_first_is_tried_again_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.mcp import hub

    monkeypatch.setattr(hub, "RETRY_DOWN_S", 0.5)
    port = _free_port()
    with _runtime(tmp_path, {"h": {"url": f"http://127.0.0.1:{port}/mcp"}}) as rt:
        with pytest.raises(WorkflowInvalid, match="MCP server 'h' is down"):
            rt.submit(_tool_workflow("h__echo", {"text": "x"}))
        proc = _start_http(port)
        try:
            time.sleep(0.6)
            info, _ = _run(rt, _tool_workflow("h__echo", {"text": "up now"}))
            assert info.status == "completed" and info.result["call"] == "up now", info.error
        finally:
            proc.kill()
            proc.wait()
