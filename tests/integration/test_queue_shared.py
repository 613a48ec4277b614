# ruff: noqa: F811 - the fixtures q, runtime and fake_openai are imported, and named again as parameters
"""Queue mode's shared state (issue 16): memory and the Settings page's values are the same for every worker.

Two real ``python -m engine worker`` processes, each with its own ``DATA_DIR``
(as on two machines), over the suite's throwaway PostgreSQL and a real Chroma
server (``chroma run``, tests/integration/chroma_server.py). An agent with
memory (examples/memory_chat.json, the offline model) recalls on one worker
what it learnt on the other; settings saved through the runtime (what the
dashboard's Save calls) reach a worker's next run; a worker whose memory would
be a file refuses to start in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.settings import Settings as SavedSettings
from tests.fake_openai import FakeOpenAIServer, fake_openai  # noqa: F401 - the fixture
from tests.integration.test_queue import REPO, Queue, q, runtime  # noqa: F401 - the fixtures

pytest_plugins = ["tests.integration.pg", "tests.integration.chroma_server"]

# These tests kill no worker: a generous stall limit keeps a busy machine's slow beat from passing a run on.
CALM = {"QUEUE_STALLED_S": "30"}

MEMORY_CHAT = json.loads((REPO / "examples" / "memory_chat.json").read_text(encoding="utf-8"))

AGENT = {
    "format": "workflow/v1",
    "name": "Shared settings",
    "inputs": {"message": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "agent", "type": "agent", "config": {"prompt": "{{ inputs.message }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.agent.output }}"}},
    ],
    "edges": [{"source": "start", "target": "agent"}, {"source": "agent", "target": "out"}],
}


def _finished(q: Queue, runtime: Any, run_id: str) -> dict[str, Any]:
    info = runtime.wait(run_id, timeout=120)
    row = q.run_row(run_id)
    assert row["status"] == "completed", (info, row, q.events(run_id)[-3:])
    return row


def _data(q: Queue, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [data for _, k, _, data in q.events(run_id) if k == kind]


def test_a_worker_refuses_memory_in_a_file_in_one_line(q: Queue) -> None:
    no_server = q.cli("worker", CHROMA_HOST="")
    assert no_server.returncode == 2, no_server.stderr
    line = no_server.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "set CHROMA_HOST" in line

    sqlite = q.cli("worker", MEMORY_DATABASE_URL=f"sqlite:///{q.root / 'memory.db'}")
    assert sqlite.returncode == 2, sqlite.stderr
    line = sqlite.stderr.strip()
    assert len(line.splitlines()) == 1 and "MEMORY_DATABASE_URL" in line and "PostgreSQL" in line
    assert not (q.root / "memory.db").exists()


def test_an_agent_with_memory_recalls_the_same_whichever_worker_runs_it(q: Queue, runtime: Any) -> None:
    first_dir, second_dir = q.root / "machine-a", q.root / "machine-b"
    first = q.worker(DATA_DIR=str(first_dir), **CALM)
    told = runtime.submit(MEMORY_CHAT, {"message": "My name is Alice and I run the billing team.", "user": "t1"})
    told_row = _finished(q, runtime, told)
    assert _data(q, told, "memory.saved")[0]["short_term"] is True

    first.terminate()  # the first machine goes away; the second one has never seen this agent
    first.wait(30)
    second = q.worker(DATA_DIR=str(second_dir), **CALM)
    asked = runtime.submit(MEMORY_CHAT, {"message": "What's my name?", "user": "t1"})
    asked_row = _finished(q, runtime, asked)
    assert asked_row["owner"] != told_row["owner"]
    assert str(second.pid) in asked_row["owner"] and str(first.pid) in told_row["owner"]

    recalled = _data(q, asked, "memory.recalled")[0]
    assert recalled["agent_id"] == "assistant-t1"
    assert recalled["hits"] and "Alice" in recalled["hits"][0]["text"]
    assert recalled["hits"][0]["run_id"] == told
    assert recalled["short_term_turns"] == 1  # the first run's turn, from PostgreSQL
    assert q.query("SELECT count(*) FROM memory_turns WHERE agent_id = 'assistant-t1'") == [(2,)]
    assert runtime.settings.memory.database_url == q.url  # the dashboard's Memory page reads the same turns
    other = runtime.submit(MEMORY_CHAT, {"message": "What's my name?", "user": "t2"})
    _finished(q, runtime, other)
    assert _data(q, other, "memory.recalled")[0]["hits"] == []  # another agent's memory stays its own
    for folder in (first_dir, second_dir):  # nothing an agent remembers lives on one machine
        assert not (folder / "memory.db").exists() and not (folder / "chroma").exists()


def test_settings_saved_through_the_runtime_reach_a_worker(
    q: Queue,
    runtime: Any,
    fake_openai: FakeOpenAIServer,
) -> None:
    q.worker(DATA_DIR=str(q.root / "machine-a"), **CALM)
    before = runtime.submit(AGENT, {"message": "hello"})
    _finished(q, runtime, before)
    assert _data(q, before, "llm.completed")[0].get("offline") is True  # the worker has no endpoint of its own
    assert fake_openai.requests == []

    saved = SavedSettings(
        base_url=fake_openai.base_url, model="shared-model", prices={"shared-model": {"input": 1.0, "output": 2.0}}
    )
    path = runtime.save_settings(saved)
    assert Path(path).is_file()  # the local file as well
    fake_openai.enqueue_text("from the shared endpoint")
    after = runtime.submit(AGENT, {"message": "hello again"})
    _finished(q, runtime, after)
    call = _data(q, after, "llm.completed")[0]
    assert call["model"] == "shared-model" and not call.get("offline")
    assert [r["model"] for r in fake_openai.requests] == ["shared-model"]
    assert q.run_row(after)["result"] is not None and "from the shared endpoint" in json.dumps(
        q.run_row(after)["result"]
    )

    # a dashboard started later (any machine) shows what was saved, prices included
    from engine.queue.client import QueueRuntime

    other = QueueRuntime(database_url=q.url, settings=Settings.from_env({"DATA_DIR": str(q.root / "machine-c")}))
    try:
        assert other.settings.llm.model == "shared-model"
        assert other.settings.llm.base_url == fake_openai.base_url
        assert other.settings.saved.prices == {"shared-model": {"input": 1.0, "output": 2.0}}
    finally:
        other.shutdown()

    # a price-only save keeps the endpoint the page changed before, for the workers too
    runtime.save_settings(
        SavedSettings(base_url=fake_openai.base_url, model="shared-model"), keep=("base_url", "model", "embeddings")
    )
    fake_openai.enqueue_text("still shared")
    last = runtime.submit(AGENT, {"message": "once more"})
    _finished(q, runtime, last)
    assert _data(q, last, "llm.completed")[0]["model"] == "shared-model"
