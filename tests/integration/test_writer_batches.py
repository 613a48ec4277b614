"""The store writer's batches on PostgreSQL under queue mode's fences: few statements, exact fencing.

Why this file exists: queue mode's writer once spent four round trips per run per batch
(fence, node update, run update, NOTIFY) and fell seconds behind at 1,000 events/s over
100 runs (docs/benchmarks.md, queue mode). A batch now costs a fixed number of statements
whatever the number of runs; these tests hold it to that, and check that the single fence
statement still keeps every event of a run whose lease moved on out of the store while the
other runs of the same batch land whole, and that every run of the batch is notified.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select, update

from engine.events import Event
from engine.queue.jobs import conninfo
from engine.store import Store
from engine.store.writer import EVENTS_CHANNEL, NODES, RUNS
from tests.integration.pg import _fresh_postgres_database

pytest_plugins = ["tests.integration.pg"]

DOC = {
    "format": "workflow/v1",
    "name": "batches",
    "nodes": [{"id": "start", "type": "input"}, {"id": "a", "type": "transform", "config": {"value": "1"}}],
    "edges": [{"source": "start", "target": "a"}],
}


@pytest.fixture
def store(postgres_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, list[str]]]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    failures: list[str] = []
    opened = Store(
        _fresh_postgres_database(postgres_url),
        data_dir=tmp_path,
        on_write_failure=lambda run_id, message: failures.append(run_id),
    )
    yield opened, failures
    opened.close()


def _runs(store: Store, count: int) -> list[str]:
    """``count`` running runs, each fenced at epoch 1, with ``run.started`` and node ``a`` started committed."""
    ref = store.save_workflow(DOC)
    ids = [f"batch-{i:03d}" for i in range(count)]
    for run_id in ids:
        store.create_run(run_id=run_id, workflow=ref, inputs={}, owner="test")
    store.flush()
    with store.engine.begin() as conn:
        conn.execute(update(RUNS).where(RUNS.c.run_id.in_(ids)).values(lease_epoch=1))
    for run_id in ids:
        store.writer.fence(run_id, 1, 0)
        store.append(Event(1, run_id, time.time(), "run.started", None, {"inputs": {}, "workflow": "batches"}))
        store.append(Event(2, run_id, time.time(), "node.started", "a", {"execution": 0, "iteration": 0}))
    store.flush()
    return ids


def _finish(store: Store, ids: list[str]) -> None:
    """One batch: every run's node ``a`` completes (its row is from an earlier batch), a model's tokens, the end."""
    for run_id in ids:
        now = time.time()
        done = {"output": {"v": run_id}, "duration_ms": 1.5, "attempts": 1}
        store.append(Event(3, run_id, now, "node.completed", "a", done))
        store.append(Event(4, run_id, now, "llm.completed", "a", {"prompt_tokens": 7, "completion_tokens": 5}))
        store.append(Event(5, run_id, now, "run.completed", None, {"result": {"r": run_id}}))
    store.flush()


def test_a_batch_of_forty_fenced_runs_costs_a_fixed_number_of_statements_and_notifies_each(
    store: tuple[Store, list[str]],
) -> None:
    db, _ = store
    ids = _runs(db, 40)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements.append(sql.split()[0])

    with psycopg.connect(conninfo(db.url), autocommit=True) as listener:
        listener.execute(f"LISTEN {EVENTS_CHANNEL}")
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            _finish(db, ids)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        notified = [note.payload for note in listener.notifies(timeout=2.0, stop_after=len(ids))]
    # the fence, node rows, events, run rows, the NOTIFYs (BEGIN/COMMIT aside): 161 before, four per run
    assert len(statements) <= 6, statements
    assert sorted(notified) == ids
    with db.engine.connect() as conn:
        runs = conn.execute(
            select(RUNS.c.run_id, RUNS.c.status, RUNS.c.last_seq, RUNS.c.prompt_tokens, RUNS.c.result)
            .where(RUNS.c.run_id.in_(ids))
            .order_by(RUNS.c.run_id)
        ).all()
        nodes = conn.execute(
            select(NODES.c.run_id, NODES.c.status, NODES.c.output, NODES.c.duration_ms).order_by(NODES.c.run_id)
        ).all()
    assert [tuple(r) for r in runs] == [(i, "completed", 5, 7, {"r": i}) for i in ids]
    assert [tuple(n) for n in nodes] == [(i, "succeeded", {"v": i}, 1.5) for i in ids]
    assert all(len(db.events(i)) == 5 for i in ids)


def test_a_run_whose_lease_moved_on_commits_nothing_and_the_others_of_its_batch_everything(
    store: tuple[Store, list[str]],
) -> None:
    db, failures = store
    ids = _runs(db, 5)
    taken = ids[2]
    with db.engine.begin() as conn:  # another worker claimed it (or the sweep handed it on)
        conn.execute(update(RUNS).where(RUNS.c.run_id == taken).values(lease_epoch=2))
    with pytest.raises(RuntimeError, match=f"run {taken}: its lease was taken over"):
        _finish(db, ids)
    assert failures == [taken]
    assert [e.seq for e in db.events(taken)] == [1, 2]
    with db.engine.connect() as conn:
        row = conn.execute(select(RUNS.c.status, RUNS.c.last_seq).where(RUNS.c.run_id == taken)).one()
        node = conn.execute(select(NODES.c.status).where(NODES.c.run_id == taken)).scalar_one()
    assert (row.status, row.last_seq, node) == ("running", 2, "running")
    for run_id in ids:
        if run_id != taken:
            assert [e.seq for e in db.events(run_id)] == [1, 2, 3, 4, 5]
            assert db.get_run(run_id).status == "completed"  # type: ignore[union-attr]
