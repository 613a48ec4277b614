"""Honest history (issue 14, point 5) against the real store (SQLite and PostgreSQL), real subprocesses
and the real openai client against tests/fake_openai.py.

A run fails, waits idle, is resumed and completes: its failed attempt stays in the record (with its
error text), its active time excludes the idle gap and is the same whether read from the stored rows
(the lists) or folded from the events (the Run page), and its creation time is the row's. An agent's
input record names the model that answered. The first use of the embedding model in a process is in
the run's log with its time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tools
from engine.attempts import earlier_attempts
from engine.cli import main as cli
from engine.run_times import clock_of, times_of_rows
from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer

pytest_plugins = ["tests.integration.pg"]

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 30
IDLE_S = 1.2  # the gap between the failure and the resume
_BROKEN = {"on": True}


async def _flaky(value: int) -> int:
    """Fails while the test says it is broken, else returns value + 1."""
    if _BROKEN["on"]:
        raise RuntimeError("the flaky tool is broken: flag set by the test")
    return value + 1


# This module's runtimes use their own registry: the usual tools plus the flaky one.
TOOLS = tools.default_registry().copy()
TOOLS.register(_flaky, name="itest_history_flaky")


@pytest.fixture(autouse=True)
def _flaky_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    _BROKEN["on"] = True


FLAKY: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "Flaky chain",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "first", "type": "transform", "config": {"expression": "41"}},
        {
            "id": "flaky",
            "type": "tool",
            "config": {"tool": "itest_history_flaky", "args": {"value": "{{ nodes.first.output }}"}},
        },
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.flaky.output }}"}},
    ],
    "edges": [
        {"source": "start", "target": "first"},
        {"source": "first", "target": "flaky"},
        {"source": "flaky", "target": "out"},
    ],
}


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    rt = Runtime(tools=TOOLS, database_url=store_url)
    try:
        yield rt
    finally:
        rt.shutdown()


def failed_then_resumed(rt: Runtime) -> str:
    run_id = rt.submit(FLAKY, {})
    assert rt.wait(run_id, WAIT_S).status == "failed"
    rt.store.flush()
    time.sleep(IDLE_S)
    _BROKEN["on"] = False
    rt.resume(run_id)
    info = rt.wait(run_id, WAIT_S)
    assert info.status == "completed", info.error
    rt.store.flush()
    return run_id


def test_a_resumed_run_keeps_its_failed_attempt_with_its_error(runtime: Runtime) -> None:
    run_id = failed_then_resumed(runtime)
    rows = runtime.store.node_executions(run_id)
    assert [(r.node_id, r.status) for r in rows if r.node_id == "flaky"] == [("flaky", "succeeded")]
    earlier = earlier_attempts(runtime.store.events(run_id))
    assert len(earlier) == 1
    attempt = earlier[0]
    assert (attempt.node_id, attempt.status, attempt.period) == ("flaky", "failed", 1)
    assert "the flaky tool is broken" in (attempt.error or "")
    assert attempt.finished_at is not None and attempt.duration_ms is not None
    assert attempt.started_seq < next(r.started_seq for r in rows if r.node_id == "flaky")


def test_active_time_leaves_out_the_idle_gap_and_lists_agree_with_the_fold(runtime: Runtime) -> None:
    run_id = failed_then_resumed(runtime)
    row = runtime.store.get_run(run_id)
    events = runtime.store.events(run_id)
    marker = next(e for e in events if e.type == "log" and e.data.get("resumed"))
    failed = next(e for e in events if e.type == "run.failed")
    assert marker.data["paused_at"] == pytest.approx(failed.ts), "the resume says when the run stopped"
    listed = times_of_rows(runtime.store, [row])[run_id]
    folded = clock_of(events).times(running=False, created_at=row.created_at)
    assert listed.active_s == pytest.approx(folded.active_s) and listed.wall_s == pytest.approx(folded.wall_s)
    assert listed.wall_s is not None and listed.active_s is not None
    assert listed.wall_s >= IDLE_S
    assert listed.idle_s == pytest.approx(marker.ts - failed.ts)
    assert listed.active_s < listed.wall_s - IDLE_S * 0.9
    assert runtime.status(run_id).created_at == row.created_at, "the live record keeps the run's creation time"


def test_a_run_never_resumed_has_active_equal_to_wall(runtime: Runtime) -> None:
    run_id = runtime.submit(FLAKY, {})
    runtime.wait(run_id, WAIT_S)
    runtime.store.flush()
    row = runtime.store.get_run(run_id)
    times = times_of_rows(runtime.store, [row])[run_id]
    assert times.active_s == times.wall_s == pytest.approx(row.finished_at - row.started_at)
    assert runtime.status(run_id).created_at == row.created_at


def test_cli_show_and_runs_list_the_earlier_attempt_and_both_times(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("the CLI reads the same store functions; SQLite is enough here")
    rt = Runtime(tools=TOOLS, database_url=store_url)
    try:
        run_id = failed_then_resumed(rt)
    finally:
        rt.shutdown()
    capsys.readouterr()
    assert cli(["show", run_id, "--db", store_url]) == 0
    shown = capsys.readouterr().out
    line = next(x for x in shown.splitlines() if "earlier attempt" in x)
    assert "flaky" in line and "failed" in line and "the flaky tool is broken" in line
    assert "active " in shown and " · wall " in shown and "(resumed 1x)" in shown
    assert cli(["runs", "--db", store_url]) == 0
    listed = capsys.readouterr().out
    row = next(x for x in listed.splitlines() if x.startswith(run_id))
    assert "active " in row and " · wall " in row


# --------------------------------------------------------------------------- the recorded model

AGENT: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "One agent",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "agent", "config": {"prompt": "Say hello"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.ask.output }}"}},
    ],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}],
}


def agent_input(tmp_path: Path) -> dict[str, Any]:
    rt = Runtime(tools=TOOLS, data_dir=tmp_path / "data")
    try:
        run_id = rt.submit(AGENT, {})
        assert rt.wait(run_id, WAIT_S).status == "completed"
        rt.store.flush()
        row = next(r for r in rt.store.node_executions(run_id) if r.node_id == "ask")
    finally:
        rt.shutdown()
    return row.input


def test_the_record_names_the_offline_model_when_it_answered(tmp_path: Path) -> None:
    record = agent_input(tmp_path)
    assert record["model"] == "offline"
    assert record["requested_model"] == "gpt-4o-mini", "what the node asked for is kept beside it"


def test_the_record_names_the_model_the_server_answered_with(
    tmp_path: Path, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.enqueue_text("hello", model="gpt-4o-mini-2024-07-18")
    record = agent_input(tmp_path)
    assert fake_openai.requests[0]["model"] == "gpt-4o-mini"
    assert record["model"] == "gpt-4o-mini-2024-07-18" and record["requested_model"] == "gpt-4o-mini"


def test_the_record_has_no_second_name_when_the_asked_model_answered(
    tmp_path: Path, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.enqueue_text("hello")
    record = agent_input(tmp_path)
    assert record["model"] == "gpt-4o-mini" and "requested_model" not in record


# --------------------------------------------------------------------------- the embedding model's first use


def test_the_first_use_of_the_embedding_model_is_logged_with_its_time(tmp_path: Path) -> None:
    """A fresh process (the model is loaded once per process): the run's events carry the two log lines."""
    events_file = tmp_path / "events.jsonl"
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", str(REPO / "examples" / "memory_chat.json"),
         "--events", str(events_file), "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    logs = [e for e in events if e["type"] == "log"]
    took = [e for e in logs if e["data"]["message"].startswith("loading the embedding model took ")]
    assert len(took) == 1, [e["data"]["message"] for e in logs]
    assert took[0]["node_id"] == "assistant" and 0 < took[0]["data"]["seconds"] < 120
    before = next(e for e in logs if e["data"]["message"].startswith("loading the embedding model (its first use"))
    recalled = next(e for e in events if e["type"] == "memory.recalled")
    assert before["seq"] < took[0]["seq"] < recalled["seq"]


def test_a_loaded_embedding_model_is_not_logged_again(tmp_path: Path) -> None:
    from memory import embedding_model_pending, load_embedding_model

    load_embedding_model()
    assert not embedding_model_pending()
    rt = Runtime(tools=TOOLS, data_dir=tmp_path / "data")
    try:
        run_id = rt.submit(str(REPO / "examples" / "memory_chat.json"), {})
        assert rt.wait(run_id, WAIT_S).status == "completed"
        rt.store.flush()
        messages = [e.data["message"] for e in rt.store.events(run_id) if e.type == "log"]
    finally:
        rt.shutdown()
    assert not any("embedding model" in m for m in messages), messages


def test_a_resume_marker_without_paused_at_counts_from_the_event_before_it(runtime: Runtime) -> None:
    """Runs resumed before markers said when the run stopped: the gap runs from the event just before."""
    from sqlalchemy import update

    from engine.store.tables import EventRow

    run_id = failed_then_resumed(runtime)
    events = runtime.store.events(run_id)
    marker = next(e for e in events if e.type == "log" and e.data.get("resumed"))
    legacy = {k: v for k, v in marker.data.items() if k != "paused_at"}
    table = EventRow.__table__
    with runtime.store.engine.begin() as conn:
        conn.execute(update(table).where(table.c.run_id == run_id, table.c.seq == marker.seq).values(data=legacy))
    events = runtime.store.events(run_id)
    assert "paused_at" not in next(e for e in events if e.seq == marker.seq).data
    row = runtime.store.get_run(run_id)
    listed = times_of_rows(runtime.store, [row])[run_id]
    folded = clock_of(events).times(running=False)
    before = next(e for e in events if e.seq == marker.seq - 1)
    assert listed.idle_s == pytest.approx(marker.ts - before.ts) == pytest.approx(folded.idle_s)
    assert listed.idle_s >= IDLE_S * 0.9


def test_an_interrupted_run_ends_at_its_last_event(runtime: Runtime) -> None:
    """A crashed run has no terminal event and no finished_at: both readings end at its last event."""
    from sqlalchemy import delete, update

    from engine.store.tables import EventRow, RunRow

    run_id = runtime.submit(FLAKY, {})
    runtime.wait(run_id, WAIT_S)
    runtime.store.flush()
    events = runtime.store.events(run_id)
    events_t, runs_t = EventRow.__table__, RunRow.__table__
    with runtime.store.engine.begin() as conn:  # as if the process died before its terminal event
        conn.execute(delete(events_t).where(events_t.c.run_id == run_id, events_t.c.seq == events[-1].seq))
        conn.execute(update(runs_t).where(runs_t.c.run_id == run_id).values(status="interrupted", finished_at=None))
    events = events[:-1]
    row = runtime.store.get_run(run_id)
    listed = times_of_rows(runtime.store, [row])[run_id]
    assert listed.wall_s == pytest.approx(events[-1].ts - row.started_at)
    assert listed == clock_of(events).times(running=False)
