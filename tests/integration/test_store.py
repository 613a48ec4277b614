"""The durable store (issue 3, "Store" and "Bad input and faults"), against SQLite and a real PostgreSQL.

Tests taking ``store_url`` run twice: on a SQLite file in ``tmp_path`` and on
a fresh database of a throwaway PostgreSQL server (``tests/integration/pg.py``;
the postgres half skips with the reason when no server can be started).
Runs go through the real :class:`engine.runtime.Runtime` with the offline
model; faults are real where that is possible here (a read-only data
directory via ``chattr +i`` as root or ``chmod`` otherwise, a full disk via
a tiny tmpfs) and injected into the writer's transaction otherwise.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

import tools
from engine.events import Event
from engine.model import MAX_NAME_CHARS, MAX_NODE_ID_CHARS
from engine.runtime import Runtime
from engine.store import Store, StoreError, process_owner
from engine.store import writer as writer_module
from engine.store.db import sqlite_path
from engine.store.tables import EventRow
from engine.store.writer import RUNS
from tests.readonly import unwritable

pytest_plugins = ["tests.integration.pg"]

WAIT_S = 30


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass the URL or data dir themselves; an outer DATABASE_URL must not redirect them."""
    monkeypatch.delenv("DATABASE_URL", raising=False)


# --------------------------------------------------------------------------- tools and workflows


async def _sleep_tool(seconds: float, value: int = 0) -> int:
    """Sleep, then return value + 1."""
    await asyncio.sleep(seconds)
    return value + 1


async def _fail_tool(message: str) -> int:
    """Always fails with the message."""
    raise RuntimeError(message)


# This module's runtimes use their own registry: the usual tools plus these.
TOOLS = tools.default_registry().copy()
TOOLS.register(_sleep_tool, name="itest_store_sleep")
TOOLS.register(_fail_tool, name="itest_store_fail")


def chain_doc(name: str = "store-chain", prompt: str = "Say something about {{ inputs.topic }}") -> dict[str, Any]:
    """start -> double (transform) -> writer (agent, offline model) -> out."""
    return {
        "format": "workflow/v1",
        "name": name,
        "inputs": {"topic": {"type": "string", "default": "stores"}, "n": {"type": "integer", "default": 4}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "double", "type": "transform", "config": {"expression": "inputs.n * 2"}},
            {"id": "writer", "type": "agent", "config": {"prompt": prompt}},
            {
                "id": "out",
                "type": "output",
                "config": {"value": {"double": "{{ nodes.double.output }}", "text": "{{ nodes.writer.output }}"}},
            },
        ],
        "edges": [
            {"source": "start", "target": "double"},
            {"source": "double", "target": "writer"},
            {"source": "writer", "target": "out"},
        ],
    }


def loop_doc(name: str = "store-loop") -> dict[str, Any]:
    """A loop of ``rounds`` iterations; each iteration takes one branch of even/odd, skipping the other."""
    return {
        "format": "workflow/v1",
        "name": name,
        "inputs": {"rounds": {"type": "integer", "default": 3}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "round", "type": "transform", "config": {"expression": "iteration + 1"}},
            {"id": "even", "type": "condition", "config": {"expression": "nodes.round.output % 2 == 0"}},
            {"id": "yes", "type": "transform", "config": {"template": "even {{ nodes.round.output }}"}},
            {"id": "no", "type": "transform", "config": {"template": "odd {{ nodes.round.output }}"}},
            {"id": "join", "type": "transform", "config": {"expression": "nodes.yes.output or nodes.no.output"}},
            {"id": "check", "type": "condition", "config": {"expression": "nodes.round.output >= inputs.rounds"}},
            {
                "id": "out",
                "type": "output",
                "config": {"value": {"last": "{{ nodes.join.output }}", "rounds": "{{ nodes.round.output }}"}},
            },
        ],
        "edges": [
            {"source": "start", "target": "round"},
            {"source": "round", "target": "even"},
            {"source": "even", "target": "yes", "when": "true"},
            {"source": "even", "target": "no", "when": "default"},
            {"source": "yes", "target": "join"},
            {"source": "no", "target": "join"},
            {"source": "join", "target": "check"},
            {"source": "check", "target": "round", "when": "false"},
            {"source": "check", "target": "out", "when": "true"},
        ],
    }


def failing_doc(name: str = "store-failing") -> dict[str, Any]:
    """start -> ok (transform) -> boom (tool that always fails) -> out."""
    return {
        "format": "workflow/v1",
        "name": name,
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "ok", "type": "transform", "config": {"expression": "1 + 1"}},
            {
                "id": "boom",
                "type": "tool",
                "config": {"tool": "itest_store_fail", "args": {"message": "the tool broke on purpose"}},
            },
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.boom.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "ok"},
            {"source": "ok", "target": "boom"},
            {"source": "boom", "target": "out"},
        ],
    }


def slow_doc(name: str = "store-slow", first_s: float = 0.3, second_s: float = 0.6) -> dict[str, Any]:
    """start -> a -> slow1 (tool) -> b -> slow2 (tool) -> out: the run is still going after slow1."""
    return {
        "format": "workflow/v1",
        "name": name,
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "a", "type": "transform", "config": {"expression": "1"}},
            {
                "id": "slow1",
                "type": "tool",
                "config": {"tool": "itest_store_sleep", "args": {"seconds": first_s, "value": "{{ nodes.a.output }}"}},
            },
            {"id": "b", "type": "transform", "config": {"expression": "nodes.slow1.output * 10"}},
            {
                "id": "slow2",
                "type": "tool",
                "config": {"tool": "itest_store_sleep", "args": {"seconds": second_s, "value": "{{ nodes.b.output }}"}},
            },
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.slow2.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "a"},
            {"source": "a", "target": "slow1"},
            {"source": "slow1", "target": "b"},
            {"source": "b", "target": "slow2"},
            {"source": "slow2", "target": "out"},
        ],
    }


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    rt = Runtime(tools=TOOLS, database_url=store_url)
    try:
        yield rt
    finally:
        rt.shutdown()


def run_to_end(rt: Runtime, doc: dict[str, Any], inputs: dict[str, Any] | None = None) -> str:
    run_id = rt.submit(doc, inputs or {})
    info = rt.wait(run_id, timeout=WAIT_S)
    assert info.finished, f"run {run_id} still {info.status} after {WAIT_S} s"
    rt.store.flush()
    return run_id


def assert_gap_free(events: list[Event], run_id: str) -> None:
    seqs = [e.seq for e in events]
    gaps = [(a, b) for a, b in pairwise([0, *seqs]) if b != a + 1]
    assert not gaps, f"seq not 1..n without gaps: {len(seqs)} events, jumps (from, to): {gaps[:5]}"
    assert {e.run_id for e in events} == {run_id}


def integrity_ok(url: str) -> None:
    """PRAGMA integrity_check on a SQLite store (no-op for other databases)."""
    path = sqlite_path(url)
    if path is None:
        return
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def craft_running_run(store: Store, owner: str, *, heartbeat_at: float | None = None, name: str = "crafted") -> str:
    """A ``runs`` row left ``running`` by ``owner`` (a process that may be gone)."""
    ref = store.save_workflow(chain_doc(name))
    run_id = uuid.uuid4().hex
    store.create_run(run_id=run_id, workflow=ref, inputs={"topic": "x", "n": 1}, owner=owner)
    store.flush()
    if heartbeat_at is not None:
        with store.engine.begin() as conn:
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(heartbeat_at=heartbeat_at))
    return run_id


# --------------------------------------------------------------------------- values as written

# Texts that an array's text form must quote or escape, and values of every JSON kind: the writer sends a batch's
# values to PostgreSQL as one text array per column (engine/store/writer.py), to SQLite as bound parameters.
AWKWARD_TEXTS = [
    'say "hi"',
    "back\\slash",
    "{braces}",
    "a,b",
    "NULL",
    "null",
    "",
    " lead",
    "tab\tnew\nline",
    "\u2028\u3000 unicode spaces",
    "é ü 中文 🙂",
    "x" * 20_000,
]


@pytest.mark.parametrize("text", AWKWARD_TEXTS, ids=range(len(AWKWARD_TEXTS)))
def test_every_value_comes_back_from_the_store_as_it_was_written(store_url: str, text: str) -> None:
    store = Store(store_url)
    try:
        ref = store.save_workflow(chain_doc())
        store.create_run(run_id="values", workflow=ref, inputs={"topic": text}, owner="test")
        data = {"text": text, "list": [text, None, 1.5, -2, True], "nested": {text: {"n": 10**15}}, "none": None}
        events = [
            Event(1, "values", 1.25, "run.started", None, {"inputs": {"topic": text}, "workflow": text}),
            Event(2, "values", 2.5, "node.started", "n", {"iteration": 0, "execution": 0}),
            Event(3, "values", 3.75, "log", "n", {"level": "info", "message": text}),
            Event(
                4,
                "values",
                4.0,
                "node.completed",
                "n",
                {"output": data, "duration_ms": 0.125, "attempts": 1, "input": {"args": data}},
            ),
            Event(5, "values", 5.0, "run.completed", None, {"result": data}),
        ]
        for e in events:
            store.append(e)
        store.flush()
        assert [e.to_dict() for e in store.events("values")] == [e.to_dict() for e in events]
        (row,) = store.node_executions("values")
        assert (row.node_id, row.status, row.output, row.input, row.duration_ms) == (
            "n",
            "succeeded",
            data,
            {"args": data},
            0.125,
        )
        run = store.get_run("values")
        assert run is not None
        assert (run.status, run.inputs, run.result, run.last_seq) == ("completed", {"topic": text}, data, 5)
    finally:
        store.close()


def test_the_longest_name_and_node_id_a_workflow_may_have_are_stored_whole(runtime: Runtime) -> None:
    long_id = "n" * MAX_NODE_ID_CHARS
    doc = chain_doc("w" * MAX_NAME_CHARS)
    doc["nodes"][1]["id"] = long_id
    doc["nodes"][3]["config"]["value"]["double"] = "{{ nodes." + long_id + ".output }}"
    doc["edges"][0]["target"] = doc["edges"][1]["source"] = long_id
    run_id = run_to_end(runtime, doc)
    run = runtime.store.get_run(run_id)
    assert run is not None and (run.status, run.workflow_name) == ("completed", doc["name"])
    assert long_id in {row.node_id for row in runtime.store.node_executions(run_id)}
    assert long_id in {e.node_id for e in runtime.store.events(run_id)}
    # a longer name is refused with a sentence on both stores (PostgreSQL's own refusal is a driver error)
    with pytest.raises(StoreError, match=f"501 characters long; shorten it to {MAX_NAME_CHARS}"):
        runtime.store.save_workflow(chain_doc("w" * (MAX_NAME_CHARS + 1)))


# --------------------------------------------------------------------------- workflows and versions


def test_same_document_twice_is_one_version_and_a_change_adds_one(store_url: str) -> None:
    store = Store(store_url)
    try:
        doc = chain_doc("versioned")
        first = store.save_workflow(doc)
        again = store.save_workflow(chain_doc("versioned"))
        assert (first.version, first.created) == (1, True)
        assert (again.id, again.version, again.created) == (first.id, 1, False)

        changed = chain_doc("versioned", prompt="Something else about {{ inputs.topic }}")
        second = store.save_workflow(changed)
        assert (second.id, second.version, second.created) == (first.id, 2, True)
        assert store.save_workflow(changed).version == 2

        old = store.get_workflow(first.id, 1)
        new = store.get_workflow(first.id)
        assert old is not None and new is not None
        assert old[1].document == doc
        assert new[1].version == 2 and new[1].document == changed
        assert [v.version for v in store.workflow_versions(first.id)] == [1, 2]
        assert [w.name for w in store.list_workflows()] == ["versioned"]
    finally:
        store.close()


def test_runs_refer_to_the_version_they_ran(runtime: Runtime) -> None:
    first = run_to_end(runtime, chain_doc("pinned"))
    second = run_to_end(runtime, chain_doc("pinned", prompt="Changed {{ inputs.topic }}"))
    rows = runtime.store.get_run(first), runtime.store.get_run(second)
    assert rows[0] is not None and rows[1] is not None
    assert rows[0].workflow_id == rows[1].workflow_id
    assert (rows[0].workflow_version, rows[1].workflow_version) == (1, 2)
    saved = runtime.store.get_workflow(rows[0].workflow_id, rows[0].workflow_version)
    assert saved is not None and saved[1].document["nodes"][2]["config"]["prompt"].startswith("Say something")


def test_an_unchanged_save_right_after_an_archive_or_a_new_version_reads_them(store_url: str) -> None:
    """Store._save reuses its last read of the latest digest for a moment (a burst of submits reads it once):
    this process's own archive and new version must not be hidden by it (an unchanged save un-archives, and
    the old document again after a change is a new version holding it)."""
    store = Store(store_url)
    try:
        doc = chain_doc("cached")
        first = store.save_workflow(doc)
        assert (store.save_workflow(chain_doc("cached")).version, first.version) == (1, 1)
        assert store.archive_workflow(first.id) is True
        store.save_workflow(chain_doc("cached"))
        assert [w.name for w in store.list_workflows()] == ["cached"], "the save did not un-archive"
        changed = store.save_workflow(chain_doc("cached", prompt="Changed {{ inputs.topic }}"))
        assert changed.version == 2
        again = store.save_workflow(chain_doc("cached"))
        assert (again.version, again.created) == (3, True)
        saved = store.get_workflow(first.id, 3)
        assert saved is not None and saved[1].document == doc
    finally:
        store.close()


def test_a_burst_of_submits_stores_every_run_row_and_its_whole_log(runtime: Runtime) -> None:
    """Run rows created at once go in one statement per batch, ahead of the other runs' events queued
    with them: every row lands whole (defaults too) and every log gap-free."""
    doc = slow_doc("burst", first_s=0.01, second_s=0.01)
    ids = [runtime.submit(doc, {}) for _ in range(120)]
    infos = [runtime.wait(run_id, timeout=WAIT_S) for run_id in ids]
    assert {i.status for i in infos} == {"completed"}
    runtime.store.flush()
    for run_id in ids:
        row = runtime.store.get_run(run_id)
        assert row is not None and row.status == "completed" and row.result == {"out": 21}
        assert (row.lease_epoch, row.resumed, row.prompt_tokens) == (0, 0, 0)
        events = runtime.store.events(run_id)
        assert_gap_free(events, run_id)
        assert row.last_seq == len(events) and events[-1].type == "run.completed"
        assert [n.status for n in runtime.store.node_executions(run_id)].count("succeeded") == 6


# --------------------------------------------------------------------------- events and the runs row


def test_every_event_is_stored_once_with_seq_1_to_n(runtime: Runtime, store_url: str) -> None:
    run_id = run_to_end(runtime, loop_doc())
    in_memory = runtime.events_since(run_id, 0)
    stored = runtime.store.events(run_id)
    assert_gap_free(stored, run_id)
    assert [e.to_dict() for e in stored] == [e.to_dict() for e in in_memory]
    assert stored[0].type == "run.started" and stored[-1].type == "run.completed"

    table = EventRow.__table__  # type: ignore[attr-defined]
    with runtime.store.engine.connect() as conn:
        total, distinct, top = conn.execute(
            select(func.count(), func.count(func.distinct(table.c.seq)), func.max(table.c.seq)).where(
                table.c.run_id == run_id
            )
        ).one()
    assert total == distinct == top == len(in_memory)
    # (run_id, seq) is unique in the database itself, not just by luck
    with pytest.raises(IntegrityError), runtime.store.engine.begin() as conn:
        conn.execute(insert(table).values(run_id=run_id, seq=1, ts=time.time(), type="log", node_id=None, data={}))
    integrity_ok(store_url)


def test_runs_row_of_a_completed_run_is_projected_from_its_events(runtime: Runtime) -> None:
    before = time.time()
    run_id = run_to_end(runtime, chain_doc(), {"topic": "durability", "n": 5})
    info = runtime.status(run_id)
    row = runtime.store.get_run(run_id)
    events = runtime.store.events(run_id)
    assert row is not None and info is not None
    assert row.status == "completed" and info.status == "completed"
    assert row.result == info.result == events[-1].data["result"]
    assert row.result["out"]["double"] == 10
    assert row.error is None and row.error_node is None
    assert row.inputs == {"topic": "durability", "n": 5}
    assert row.workflow_name == "store-chain"
    prompt = sum(int(e.data["prompt_tokens"]) for e in events if e.type == "llm.completed")
    completion = sum(int(e.data["completion_tokens"]) for e in events if e.type == "llm.completed")
    assert prompt > 0 and completion > 0
    assert (row.prompt_tokens, row.completion_tokens) == (prompt, completion)
    assert row.last_seq == events[-1].seq == len(events)
    assert row.started_at == events[0].ts and row.finished_at == events[-1].ts
    assert before - 1 <= row.created_at <= row.started_at <= row.finished_at <= time.time()


def test_runs_row_of_a_failed_run_has_the_error_and_the_node(runtime: Runtime) -> None:
    run_id = run_to_end(runtime, failing_doc())
    row = runtime.store.get_run(run_id)
    assert row is not None
    assert row.status == "failed"
    assert row.error_node == "boom"
    assert row.error is not None and "the tool broke on purpose" in row.error
    assert row.result is None and row.finished_at is not None
    nodes = {(n.node_id, n.execution): n for n in runtime.store.node_executions(run_id)}
    assert nodes[("ok", 0)].status == "succeeded" and nodes[("ok", 0)].output == 2
    boom = nodes[("boom", 0)]
    assert boom.status == "failed" and boom.error is not None and "the tool broke on purpose" in boom.error
    assert boom.attempts == 1 and boom.finished_at is not None
    assert boom.input == {"tool": "itest_store_fail", "args": {"message": "the tool broke on purpose"}}
    assert ("out", 0) not in nodes or nodes[("out", 0)].status == "skipped"


def test_node_executions_has_a_row_per_iteration_including_skips(runtime: Runtime) -> None:
    run_id = run_to_end(runtime, loop_doc(), {"rounds": 3})
    assert runtime.status(run_id).result == {"out": {"last": "odd 3", "rounds": 3}}  # type: ignore[union-attr]
    rows = runtime.store.node_executions(run_id)
    by_node: dict[str, list[Any]] = {}
    for row in rows:
        by_node.setdefault(row.node_id, []).append(row)

    def shape(node_id: str) -> list[tuple[int, int, str, Any]]:
        return [(r.execution, r.iteration, r.status, r.output) for r in by_node[node_id]]

    assert shape("start") == [(0, 0, "succeeded", {"rounds": 3})]
    assert shape("round") == [(0, 0, "succeeded", 1), (1, 1, "succeeded", 2), (2, 2, "succeeded", 3)]
    assert shape("even") == [(0, 0, "succeeded", False), (1, 1, "succeeded", True), (2, 2, "succeeded", False)]
    assert shape("yes") == [(0, 0, "skipped", None), (1, 1, "succeeded", "even 2"), (2, 2, "skipped", None)]
    assert shape("no") == [(0, 0, "succeeded", "odd 1"), (1, 1, "skipped", None), (2, 2, "succeeded", "odd 3")]
    assert shape("join") == [(0, 0, "succeeded", "odd 1"), (1, 1, "succeeded", "even 2"), (2, 2, "succeeded", "odd 3")]
    assert shape("check") == [(0, 0, "succeeded", False), (1, 1, "succeeded", False), (2, 2, "succeeded", True)]
    assert shape("out") == [(0, 0, "succeeded", {"last": "odd 3", "rounds": 3})]
    for row in rows:
        assert row.started_at is not None and row.finished_at is not None and row.finished_at >= row.started_at
        assert row.duration_ms is not None and row.duration_ms >= 0
        if row.status == "completed":
            assert row.attempts == 1 and row.error is None
    assert [r.started_seq for r in rows] == sorted(r.started_seq for r in rows)
    # started_seq points at the event that opened the row
    events = {e.seq: e for e in runtime.store.events(run_id)}
    for row in rows:
        opening = events[row.started_seq]
        assert opening.node_id == row.node_id
        assert opening.type == ("node.skipped" if row.status == "skipped" else "node.started")


# --------------------------------------------------------------------------- listing and deleting


def test_list_runs_filters_by_status_and_workflow_newest_first(runtime: Runtime) -> None:
    a1 = run_to_end(runtime, chain_doc("list-a"))
    bad = run_to_end(runtime, failing_doc("list-b"))
    a2 = run_to_end(runtime, chain_doc("list-a"))
    store = runtime.store
    assert [r.run_id for r in store.list_runs()] == [a2, bad, a1]
    assert [r.run_id for r in store.list_runs(limit=2)] == [a2, bad]
    assert [r.run_id for r in store.list_runs(status="failed")] == [bad]
    assert [r.run_id for r in store.list_runs(status="completed")] == [a2, a1]
    assert store.list_runs(status="cancelled") == []
    workflow_a = store.get_run(a1).workflow_id  # type: ignore[union-attr]
    assert [r.run_id for r in store.list_runs(workflow_id=workflow_a)] == [a2, a1]
    assert [r.run_id for r in store.list_runs(workflow_id=workflow_a, status="failed")] == []
    assert store.list_runs(workflow_id="no-such-workflow") == []
    assert store.count_runs() == 3


def test_delete_run_removes_its_events_and_node_rows_but_not_a_running_one(runtime: Runtime) -> None:
    keep = run_to_end(runtime, loop_doc("delete-me"))
    gone = run_to_end(runtime, loop_doc("delete-me"))
    store = runtime.store
    assert store.delete_run(gone) is True
    assert store.get_run(gone) is None
    assert store.events(gone) == [] and store.node_executions(gone) == []
    assert store.delete_run(gone) is False
    assert store.delete_run("no-such-run") is False
    assert store.get_run(keep) is not None and len(store.events(keep)) == store.get_run(keep).last_seq  # type: ignore[union-attr]
    running = craft_running_run(store, process_owner(), name="delete-running")
    assert store.delete_run(running) is False
    assert store.get_run(running) is not None and store.get_run(running).status == "running"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- runs left behind by dead processes


def test_mark_interrupted_marks_dead_owners_only(store_url: str) -> None:
    store = Store(store_url)
    try:
        host = socket.gethostname()
        dead = craft_running_run(store, f"{host}:{dead_pid()}:12345")
        reused_pid = craft_running_run(store, f"{host}:{os.getpid()}:1")  # our pid, but another process's start time
        alive = craft_running_run(store, process_owner())
        remote_stale = craft_running_run(store, "some-other-host:4242:777", heartbeat_at=time.time() - 3600)
        remote_fresh = craft_running_run(store, "some-other-host:4243:778", heartbeat_at=time.time())

        marked = store.mark_interrupted()
        assert sorted(marked) == sorted([dead, reused_pid, remote_stale])
        for run_id in (dead, reused_pid, remote_stale):
            row = store.get_run(run_id)
            assert row is not None and row.status == "interrupted"
            assert row.error and "stopped" in row.error
        for run_id in (alive, remote_fresh):
            assert store.get_run(run_id).status == "running"  # type: ignore[union-attr]
        assert store.mark_interrupted() == []  # idempotent
    finally:
        store.close()


# --------------------------------------------------------------------------- foreign, corrupt and unwritable files


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("kind", ["random-bytes", "sqlite-header-then-garbage"])
def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    blob = random.Random(7).randbytes(64 * 1024)
    if kind == "sqlite-header-then-garbage":
        blob = b"SQLite format 3\x00" + blob[16:]
    (data / "studio.db").write_bytes(blob)
    before = _snapshot(data)

    with pytest.raises(StoreError) as caught:
        Store(data_dir=data)
    message = str(caught.value)
    assert str(data / "studio.db") in message
    assert "untouched" in message
    assert any(word in message for word in ("not a SQLite database", "damaged", "corrupt"))
    with pytest.raises(StoreError):
        Runtime(tools=TOOLS, data_dir=str(data))
    assert _snapshot(data) == before


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "studio.db")
    conn.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, lap REAL);"
        "INSERT INTO customers (name) VALUES ('Ada'), ('Grace');"
    )
    conn.commit()
    conn.close()
    before = _snapshot(data)

    with pytest.raises(StoreError) as caught:
        Store(data_dir=data)
    message = str(caught.value)
    assert str(data / "studio.db") in message and "another program" in message and "customers" in message
    with pytest.raises(StoreError):
        Runtime(tools=TOOLS, database_url=f"sqlite:///{data / 'studio.db'}")
    assert _snapshot(data) == before


def test_an_empty_file_or_our_own_database_opens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "studio.db").write_bytes(b"")
    store = Store(data_dir=data)
    ref = store.save_workflow(chain_doc("reopen"))
    store.close()
    again = Store(data_dir=data)
    try:
        assert again.get_workflow(ref.id) is not None
    finally:
        again.close()


def _says_why_unwritable(message: str) -> bool:
    lowered = message.lower()
    return any(
        w in lowered
        for w in (
            "read-only",
            "read only",
            "readonly",
            "not writable",
            "unwritable",
            "permission",
            "not permitted",
            "cannot write",
        )
    )


def test_a_read_only_data_dir_without_a_store_refuses_with_the_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with unwritable(data), pytest.raises(StoreError) as caught:
        Runtime(tools=TOOLS, data_dir=str(data))
    assert str(data) in str(caught.value)
    assert list(data.iterdir()) == []


def test_a_read_only_data_dir_without_a_store_says_it_is_not_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with unwritable(data), pytest.raises(StoreError) as caught:
        Runtime(tools=TOOLS, data_dir=str(data))
    assert _says_why_unwritable(str(caught.value)), str(caught.value)


def test_a_missing_data_dir_under_a_read_only_parent_says_why(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    with unwritable(parent), pytest.raises(StoreError) as caught:
        Runtime(tools=TOOLS, data_dir=str(parent / "data"))
    message = str(caught.value)
    assert str(parent / "data") in message and _says_why_unwritable(message), message


def test_a_read_only_data_dir_with_an_existing_store_says_it_is_not_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rt = Runtime(tools=TOOLS, data_dir=str(data))
    run_id = run_to_end(rt, chain_doc("before-read-only"))
    rt.shutdown()
    before = _snapshot(data)
    with unwritable(data):
        try:
            rt = Runtime(tools=TOOLS, data_dir=str(data))
        except StoreError as exc:
            message = str(exc)
            assert "damaged" not in message and "corrupt" not in message, message
            assert str(data) in message and _says_why_unwritable(message), message
        else:  # opened anyway: then a run must fail and say why
            try:
                other = rt.submit(chain_doc("after-read-only"), {})
                info = rt.wait(other, timeout=WAIT_S)
                assert info.status == "failed" and _says_why_unwritable(info.error or ""), info
                assert rt.status(run_id).status == "completed"  # type: ignore[union-attr]
            finally:
                rt.shutdown()
    assert _snapshot(data) == before
    integrity_ok(f"sqlite:///{data / 'studio.db'}")


# --------------------------------------------------------------------------- writes that fail mid-run


@pytest.fixture
def fail_one_batch(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Make the writer's transaction for the first batch holding a chosen event fail with 'disk I/O error'.

    The batch is applied first (so the failure happens inside the transaction,
    which is rolled back), like a disk failing at commit time.
    """
    plan: dict[str, Any] = {"type": "node.completed", "node_id": "slow1", "fired": 0, "delay_s": 0.0}
    original = writer_module._Projection.apply

    def apply(self: Any, work: list[Any]) -> None:
        hit = any(isinstance(i, Event) and i.type == plan["type"] and i.node_id == plan["node_id"] for i in work)
        if hit and not plan["fired"]:
            plan["fired"] += 1
            original(self, work)
            time.sleep(plan["delay_s"])
            raise OperationalError("INSERT INTO events ...", {}, Exception("disk I/O error"))
        original(self, work)

    monkeypatch.setattr(writer_module._Projection, "apply", apply)
    return plan


def test_a_failed_store_write_fails_the_run_with_that_message(runtime: Runtime, fail_one_batch: dict[str, Any]) -> None:
    run_id = runtime.submit(slow_doc(), {})
    info = runtime.wait(run_id, timeout=WAIT_S)
    assert fail_one_batch["fired"] == 1
    assert info.status == "failed", info
    assert info.error is not None and "disk I/O error" in info.error and "store" in info.error


def test_a_failed_store_write_leaves_a_consistent_failed_run_in_the_store(
    runtime: Runtime, store_url: str, fail_one_batch: dict[str, Any]
) -> None:
    run_id = runtime.submit(slow_doc(), {})
    runtime.wait(run_id, timeout=WAIT_S)
    with suppress(RuntimeError):
        runtime.store.flush()
    integrity_ok(store_url)
    stored = runtime.store.events(run_id)
    row = runtime.store.get_run(run_id)
    assert row is not None
    assert_gap_free(stored, run_id)  # what is committed is a prefix of the run's log
    assert row.last_seq == (stored[-1].seq if stored else 0)
    assert row.status == "failed", (row.status, row.error)
    assert row.error is not None and "disk I/O error" in row.error


def test_a_run_whose_last_events_cannot_be_stored_is_not_reported_completed(
    runtime: Runtime, fail_one_batch: dict[str, Any]
) -> None:
    fail_one_batch.update(type="run.completed", node_id=None, delay_s=0.2)
    run_id = runtime.submit(loop_doc("last-batch-fails"), {})
    info = runtime.wait(run_id, timeout=WAIT_S)
    time.sleep(0.4)  # the writer has reported by now
    info = runtime.status(run_id)  # type: ignore[assignment]
    assert fail_one_batch["fired"] == 1
    assert info.status == "failed" and "disk I/O error" in (info.error or ""), info


@contextmanager
def tiny_tmpfs(folder: Path, size: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a tiny tmpfs mount, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs to fill up here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(folder)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def fill_doc() -> dict[str, Any]:
    """A slow start (committed), then a loop writing ~20 kB per event until the disk is full, then a slow tail."""
    return {
        "format": "workflow/v1",
        "name": "fill-the-disk",
        "settings": {"max_iterations": 1000},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "warmup", "type": "tool", "config": {"tool": "itest_store_sleep", "args": {"seconds": 0.2}}},
            {"id": "big", "type": "transform", "config": {"expression": "'x' * 20000 ~ iteration"}},
            {"id": "check", "type": "condition", "config": {"expression": "iteration >= 150"}},
            {"id": "tail", "type": "tool", "config": {"tool": "itest_store_sleep", "args": {"seconds": 0.8}}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.tail.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "warmup"},
            {"source": "warmup", "target": "big"},
            {"source": "big", "target": "check"},
            {"source": "check", "target": "big", "when": "false"},
            {"source": "check", "target": "tail", "when": "true"},
            {"source": "tail", "target": "out"},
        ],
    }


@contextmanager
def full_disk_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str, Any]]:
    """Run ``fill_doc`` on a 1 MB tmpfs until a write fails with "database or disk is full".

    The moment the writer reports that failure the tmpfs is grown to 64 MB (a
    disk that was full for a moment, then had space again), so what the store
    does after a failed batch is the same on every run.
    """
    data = tmp_path / "full"
    with tiny_tmpfs(data, "1m"):
        original = writer_module.Writer._report
        grown: list[int] = []

        def report(self: Any, work: list[Any], error: str) -> None:
            if not grown:
                grown.append(
                    subprocess.run(
                        ["mount", "-o", "remount,size=64m", str(data)], check=False, capture_output=True
                    ).returncode
                )
            original(self, work, error)

        monkeypatch.setattr(writer_module.Writer, "_report", report)
        rt = Runtime(tools=TOOLS, data_dir=str(data))
        try:
            run_id = rt.submit(fill_doc(), {})
            info = rt.wait(run_id, timeout=WAIT_S)
            with suppress(RuntimeError):
                rt.store.flush()
        finally:
            rt.shutdown()
        assert grown == [0], "the disk never filled up, or the tmpfs could not be grown again"
        yield data, run_id, info


def test_a_full_disk_fails_the_run_with_that_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with full_disk_run(tmp_path, monkeypatch) as (_data, _run_id, info):
        assert info.status == "failed", info
        assert info.error is not None and "full" in info.error, info.error


def test_a_full_disk_leaves_a_consistent_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with full_disk_run(tmp_path, monkeypatch) as (data, run_id, _info):
        url = f"sqlite:///{data / 'studio.db'}"
        integrity_ok(url)
        store = Store(url)
        try:
            stored = store.events(run_id)
            row = store.get_run(run_id)
        finally:
            store.close()
        assert stored and stored[0].type == "run.started"
        assert_gap_free(stored, run_id)
        assert row is not None and row.last_seq == stored[-1].seq
        assert row.status in ("running", "failed"), row.status  # never a status the log does not show
        if row.status == "failed":
            assert row.error and "full" in row.error


def test_a_database_made_before_the_token_flags_gets_them(tmp_path: Path) -> None:
    """0002_token_flags adds runs.tokens_estimated and runs.failed_tokens to a database that lacks them."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).close()
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("ALTER TABLE runs DROP COLUMN tokens_estimated")
    conn.execute("ALTER TABLE runs DROP COLUMN failed_tokens")
    conn.execute("DELETE FROM studio_meta WHERE key = 'migration:0002_token_flags'")
    conn.commit()
    conn.close()
    store = Store(url)
    try:
        ref = store.save_workflow(chain_doc("old"))
        store.create_run(run_id="r-old", workflow=ref, inputs={}, owner="me")
        store.append(Event(1, "r-old", time.time(), "llm.completed", "a", {"model": "m", "prompt_tokens": 3,
                                                                        "completion_tokens": 2, "estimated": True,
                                                                        "failed": True}))  # fmt: skip
        store.flush()
        row = store.get_run("r-old")
        assert row is not None and row.tokens_estimated is True and row.failed_tokens == 5
        assert row.prompt_tokens + row.completion_tokens == 5
    finally:
        store.close()
