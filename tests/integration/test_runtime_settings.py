"""Runtime(settings=...) and update_settings: a run keeps the settings it started with, the next one gets the new
ones, and nothing is read from or written to os.environ on the way (real runtime, real store, fake OpenAI server)."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from engine.api.app import create_app
from engine.config import Settings
from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer

ASK = {
    "format": "workflow/v1",
    "name": "Ask",
    "inputs": {"q": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "agent", "config": {"prompt": "{{ inputs.q }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.ask.output }}"}},
    ],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}],
}


def test_a_running_run_keeps_its_settings_and_the_next_run_gets_the_new_ones(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    slow = Settings.from_env({"DATA_DIR": str(tmp_path), "OFFLINE_TOKEN_DELAY_S": "0.05"})  # the offline model
    before = dict(os.environ)
    with Runtime(settings=slow) as runtime:
        first = runtime.submit(ASK, {"q": "one two three four five six seven eight nine ten"})
        endpoint = dataclasses.replace(
            slow, llm=dataclasses.replace(slow.llm, base_url=fake_openai.base_url, model="swapped-model")
        )
        runtime.update_settings(endpoint)  # while the first run streams
        assert runtime.status(first).status == "running"
        assert runtime.settings is endpoint
        fake_openai.enqueue_text("from the endpoint")
        second = runtime.submit(ASK, {"q": "hello"})
        assert runtime.wait(second, timeout=30).result == {"out": "from the endpoint"}
        finished = runtime.wait(first, timeout=30)
        assert finished.status == "completed" and "from the endpoint" not in str(finished.result)
        models = {e.data.get("model") for e in runtime.events_since(first) if e.type == "llm.completed"}
        assert models == {"offline"}, "the first run kept the offline model it started with"
        assert [r["model"] for r in fake_openai.requests] == ["swapped-model"]
    assert dict(os.environ) == before


def test_tool_calls_use_the_runtime_settings_not_the_environment(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "note.txt").write_text("0123456789" * 10, encoding="utf-8")
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "FILES_ROOT": str(files), "FILE_READER_MAX_BYTES": "10"})
    assert "FILES_ROOT" not in os.environ  # the environment names no such folder
    with Runtime(settings=settings) as runtime:
        result = runtime.call_tool("file_reader", {"path": "note.txt"}, timeout=30)
        assert result.ok, result.error
        assert result.value["truncated"] is True and result.value["content"].startswith("0123456789\n")
        other = tmp_path / "other"
        other.mkdir()
        tools = dataclasses.replace(settings.tools, files_root=(str(other),))
        runtime.update_settings(dataclasses.replace(settings, tools=tools))
        missing = runtime.call_tool("file_reader", {"path": "note.txt"}, timeout=30)
        assert not missing.ok, "the new settings' roots no longer hold the file"


def test_the_api_memory_routes_read_the_runtime_memory_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real uvicorn server over ``create_app(runtime)``: /memory answers from the runtime's memory settings
    (its data folder and collection), not from the environment's (which names another, empty folder)."""
    import memory

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "env-data"))  # what a route reading the environment would open
    settings = Settings.from_env({"DATA_DIR": str(tmp_path / "studio"), "MEMORY_COLLECTION": "team"})
    assert settings.memory is not None
    memory.MemoryManager("settings-agent", settings=settings.memory).add_memories(
        ["The user's cat is called Miso.", "Invoices are due on Fridays."], run_id="run-1", node_id="writer"
    )
    with Runtime(settings=settings) as runtime:
        app = create_app(runtime, token=None)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                agents = client.get("/memory/agents")
                assert agents.status_code == 200, agents.text
                assert {a["agent_id"] for a in agents.json()} == {"settings-agent"}
                recalled = client.get("/memory/settings-agent", params={"query": "what is the cat's name?", "k": 1})
                assert recalled.status_code == 200, recalled.text
                assert "Miso" in recalled.json()["hits"][0]["text"]
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()
    assert not (tmp_path / "env-data" / "chroma").exists(), "nothing was opened in the environment's folder"
