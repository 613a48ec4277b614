"""Rerun from a node in the store: migration 0002 adds the fork columns to a database made before
it (SQLite and PostgreSQL), and a forked run that failed resumes with its config edit.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from engine.events import Event
from engine.runtime import Runtime
from engine.store import Store
from tests.fake_openai import FakeOpenAIServer
from tests.integration.test_rerun_cli import CHAIN, user_text


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _as_before_0002(url: str) -> None:
    """Make the database look like one written before migration 0002."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE runs DROP COLUMN forked_from"))
            conn.execute(text("ALTER TABLE node_executions DROP COLUMN reused"))
            conn.execute(text("DELETE FROM studio_meta WHERE key = 'migration:0004_fork'"))
    finally:
        engine.dispose()


def test_migration_0004_adds_the_fork_columns_to_an_older_database(store_url: str) -> None:
    with Runtime(database_url=store_url) as runtime:
        old_run = runtime.submit(CHAIN, {})
        assert runtime.wait(old_run, 30).status == "completed"
    _as_before_0002(store_url)
    assert "forked_from" not in _columns(store_url, "runs")
    with Runtime(database_url=store_url) as runtime:
        assert {"forked_from"} <= _columns(store_url, "runs") and {"reused"} <= _columns(store_url, "node_executions")
        old = runtime.status(old_run)
        assert old is not None and old.forked_from is None
        new_run = runtime.rerun(old_run, "c")
        info = runtime.wait(new_run, 30)
        assert info.status == "completed" and info.forked_from == {"run_id": old_run, "node": "c"}
        runtime.store.flush()
        assert runtime.store.get_run(new_run).forked_from == {"run_id": old_run, "node": "c"}  # type: ignore[union-attr]
        assert [n.reused for n in runtime.store.node_executions(old_run)] == [False] * 5
        assert [n.reused for n in runtime.store.node_executions(new_run)] == [True, True, True, False, False]
    store = Store(store_url)  # opening again applies nothing more
    store.close()


def test_a_failed_fork_resumes_with_its_config_edit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, fake_openai: FakeOpenAIServer
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with Runtime(data_dir=str(tmp_path / "data")) as runtime:
        source = runtime.submit(CHAIN, {})
        assert runtime.wait(source, 30).status == "completed"
        fake_openai.enqueue_error(400, "refused once")
        fork = runtime.rerun(source, "c", config={"prompt": "Trim: {{ nodes.b.output }}"})
        assert runtime.wait(fork, 30).status == "failed"
        assert runtime.resume(fork) == fork
        info = runtime.wait(fork, 30)
    assert info.status == "completed", info.error
    assert [user_text(r).split(":")[0] for r in fake_openai.requests] == [
        "Outline rivers.",
        "Draft from",
        "Edit",
        "Trim",
        "Trim",
    ]
    assert info.forked_from == {"run_id": source, "node": "c", "config": {"prompt": "Trim: {{ nodes.b.output }}"}}


@pytest.mark.parametrize("logged", ["run.started only", "the first reused node"])
def test_a_fork_stopped_before_its_reused_outputs_were_logged_reuses_them_when_resumed(
    logged: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, fake_openai: FakeOpenAIServer
) -> None:
    """A fork logs each reused execution as it reaches it, and the log is committed in batches: a crash in its
    first milliseconds leaves a log without them. The resume takes them from the source run again (emitted as
    reused, each once), instead of running and paying for the source's LLM calls a second time."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data = tmp_path / "data"
    with Runtime(data_dir=str(data)) as runtime:
        source = runtime.submit(CHAIN, {})
        assert runtime.wait(source, 30).status == "completed"
        source_events = runtime.store.events(source)
        inputs = dict(runtime.store.get_run(source).inputs)  # type: ignore[union-attr]  # defaults applied
    assert len(fake_openai.requests) == 3
    fork, record = "e" * 32, {"run_id": source, "node": "c"}
    store = Store(data_dir=data)  # the fork's row and what its dead process had committed
    try:
        ref = store.save_workflow(CHAIN)
        store.create_run(run_id=fork, workflow=ref, inputs=inputs, owner=f"{socket.gethostname()}:999999999:1",
                         forked_from=record)
        started = {"inputs": inputs, "workflow": CHAIN["name"], "forked_from": record}
        store.append(Event(1, fork, time.time(), "run.started", None, started))
        if logged == "the first reused node":
            for seq, kind, data_ in ((2, "node.started", {"iteration": 0, "execution": 0, "reused": True}),
                                     (3, "node.completed", {"output": {}, "duration_ms": 0.0, "attempts": 0,
                                                            "reused": True})):
                store.append(Event(seq, fork, time.time(), kind, "start", data_))  # type: ignore[arg-type]
        store.flush()
    finally:
        store.close()
    with Runtime(data_dir=str(data)) as runtime:
        assert runtime.status(fork).status == "interrupted"  # type: ignore[union-attr]
        assert runtime.resume(fork) == fork
        info = runtime.wait(fork, 30)
        assert info.status == "completed", info.error
        events = runtime.store.events(fork)
    prompts = [user_text(r).split(":")[0] for r in fake_openai.requests]
    assert prompts == ["Outline rivers.", "Draft from", "Edit", "Edit"]  # only the picked node ran again
    reused = [e.node_id for e in events if e.type == "node.completed" and e.data.get("reused")]
    assert reused == ["start", "a", "b"]  # each once: what the log held is reloaded, the rest emitted
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("run.started") == 1
    outputs = {e.node_id: e.data["output"] for e in source_events if e.type == "node.completed"}
    assert {e.node_id: e.data["output"] for e in events if e.type == "node.completed" and e.node_id in "ab"} == {
        "a": outputs["a"], "b": outputs["b"]
    }
