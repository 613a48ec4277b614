"""The store writer keeps runs apart: one run's unwritable event fails that run only.

The writer commits whatever is queued in one transaction (group commit). A
value the JSON encoder refuses in one run's event used to fail the whole
batch: every run in it lost its events and was marked failed. Now a failed
batch is written again run by run. Also here, through a real
:class:`~engine.runtime.Runtime`: the executor's events are always writable
and a node cancelled in its retry backoff does not stay "running" in the store.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tools
from engine.events import Event
from engine.runtime import Runtime
from engine.store import Store, process_owner
from engine.store import writer as writer_module

WAIT_S = 30


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    failures: list[tuple[str, str]] = []
    opened = Store(
        f"sqlite:///{tmp_path / 'studio.db'}", on_write_failure=lambda run_id, error: failures.append((run_id, error))
    )
    opened.failures = failures  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        opened.close()


DOC = {
    "format": "workflow/v1",
    "name": "writer isolation",
    "nodes": [{"id": "in", "type": "input"}, {"id": "t", "type": "transform", "config": {"expression": "1"}}],
    "edges": [{"source": "in", "target": "t"}],
}


def log_of(run_id: str, *, bad: bool = False) -> list[Event]:
    """run.started, node t started and completed, run.completed; ``bad`` puts a generator in node.completed."""
    output: Any = (i for i in range(3)) if bad else 1
    now = time.time()
    return [
        Event(1, run_id, now, "run.started", None, {"inputs": {}, "workflow": DOC["name"]}),
        Event(2, run_id, now, "node.started", "t", {"iteration": 0, "execution": 0}),
        Event(3, run_id, now, "node.completed", "t", {"output": output, "duration_ms": 0.1, "attempts": 1}),
        Event(4, run_id, now, "run.completed", None, {"result": {}}),
    ]


def create(store: Store, *run_ids: str) -> None:
    ref = store.save_workflow(DOC)
    for run_id in run_ids:
        store.create_run(run_id=run_id, workflow=ref, inputs={}, owner=process_owner())
    store.flush()


def assert_isolated(store: Store, good: list[str], bad: str) -> None:
    for run_id in good:
        assert [e.seq for e in store.events(run_id)] == [1, 2, 3, 4], run_id
        row = store.get_run(run_id)
        assert row is not None and row.status == "completed" and row.last_seq == 4, (row.status, row.error)
        assert [n.status for n in store.node_executions(run_id)] == ["succeeded"]
        assert store.writer.committed_seq(run_id) == 4
    assert store.events(bad) == []
    row = store.get_run(bad)
    assert row is not None and row.status == "failed"
    assert row.error is not None and "generator" in row.error and "store could not be written" in row.error
    assert [run_id for run_id, _ in store.failures] == [bad]  # type: ignore[attr-defined]


def test_a_batch_with_one_unwritable_event_fails_only_that_run(store: Store) -> None:
    good, bad = [uuid.uuid4().hex for _ in range(2)], uuid.uuid4().hex
    create(store, *good, bad)
    # One batch interleaving three runs, as 50 concurrent runs queue them.
    logs = [log_of(good[0]), log_of(bad, bad=True), log_of(good[1])]
    batch = [log[i] for i in range(4) for log in logs]
    store.writer._commit(batch)
    assert_isolated(store, good, bad)


def test_the_writer_thread_isolates_runs_sharing_a_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through the queue: the writer is held inside one batch while the next one fills up."""
    good, bad = [uuid.uuid4().hex for _ in range(2)], uuid.uuid4().hex
    create(store, *good, bad)
    entered, release = threading.Event(), threading.Event()
    original = writer_module._Projection.apply
    sizes: list[int] = []

    def apply(self: Any, work: list[Any]) -> None:
        sizes.append(len(work))
        if len(sizes) == 1:
            entered.set()
            assert release.wait(WAIT_S)
        original(self, work)

    monkeypatch.setattr(writer_module._Projection, "apply", apply)
    store.heartbeat(good)  # the batch the writer is held in
    assert entered.wait(WAIT_S)
    logs = [log_of(good[0]), log_of(bad, bad=True), log_of(good[1])]
    for i in range(4):
        for log in logs:
            store.append(log[i])
    release.set()
    with pytest.raises(RuntimeError, match="generator"):  # flush says some writes before it failed
        store.flush()
    assert sizes[1] == 12, sizes  # the three runs did share the failed batch
    assert_isolated(store, good, bad)
    store.append(Event(5, bad, time.time(), "log", None, {"level": "info", "message": "late"}))
    store.flush()  # a failed run writes nothing more (its stored log stays a prefix) and fails no one
    assert store.events(bad) == []


def test_a_batch_of_one_run_that_fails_still_fails_that_run(store: Store) -> None:
    run_id = uuid.uuid4().hex
    create(store, run_id)
    store.writer._commit(log_of(run_id, bad=True))
    assert store.events(run_id) == []
    row = store.get_run(run_id)
    assert row is not None and row.status == "failed" and "generator" in (row.error or "")


# --------------------------------------------------------------------------- through the runtime


def test_foreign_values_in_tool_args_are_stored_and_fail_only_the_tool(tmp_path: Path) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "namespace args",
        "nodes": [
            {"id": "in", "type": "input"},
            {
                "id": "t",
                "type": "tool",
                "config": {"tool": "calculator", "args": {"expression": "{{ namespace(a=1) }}"}},
            },
        ],
        "edges": [{"source": "in", "target": "t"}],
    }
    with Runtime(data_dir=str(tmp_path)) as runtime:
        run_id = runtime.submit(doc, {})
        info = runtime.wait(run_id, timeout=WAIT_S)
        runtime.store.flush()
        assert info.status == "failed"
        assert "store" not in (info.error or "") and "calculator" in (info.error or ""), info.error
        stored = runtime.store.events(run_id)
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1)) and stored[-1].type == "run.failed"
        (called,) = [e for e in stored if e.type == "tool.called"]
        assert called.data["args"] == {"expression": "<Namespace {'a': 1}>"}
        (row,) = runtime.store.node_executions(run_id)[1:]
        assert row.status == "failed" and row.input["args"] == {"expression": "<Namespace {'a': 1}>"}


def _backend_down() -> str:
    """Fail the way a backend that is down does: retryable, so the node waits in its backoff."""
    raise ConnectionError("the backend is down")


def test_a_node_cancelled_in_its_retry_backoff_is_not_left_running(tmp_path: Path) -> None:
    registry = tools.default_registry().copy()
    registry.register(_backend_down, name="backend_down")
    doc = {
        "format": "workflow/v1",
        "name": "backoff cancel",
        "nodes": [
            {"id": "in", "type": "input"},
            {"id": "s", "type": "transform", "config": {"expression": "1"}},
            {
                "id": "a",
                "type": "tool",
                "config": {"tool": "backend_down", "args": {}},
                "retry": {"attempts": 3, "backoff_s": 5},
            },
            {"id": "b", "type": "transform", "config": {"expression": "1 // 0"}},
        ],
        "edges": [{"source": "in", "target": "s"}, {"source": "s", "target": "a"}, {"source": "s", "target": "b"}],
    }
    with Runtime(data_dir=str(tmp_path), tools=registry) as runtime:
        run_id = runtime.submit(doc, {})
        info = runtime.wait(run_id, timeout=WAIT_S)
        runtime.store.flush()
        assert info.status == "failed" and info.error_node == "b"
        rows = {row.node_id: row for row in runtime.store.node_executions(run_id)}
        assert rows["a"].status == "cancelled" and rows["a"].attempts == 1 and rows["a"].finished_at is not None
        assert rows["b"].status == "failed"
