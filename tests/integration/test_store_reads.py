"""Reads at scale (issue 17 point 4), on SQLite and a real PostgreSQL: same answers, fewer costs.

The store and the reader read plain rows (SQLAlchemy Core) instead of ORM
objects; these tests hold them to the ORM's answers. Migration 0007_reads adds
``ix_runs_created`` (the newest runs come from an index); a database made
before it gets it. ``Runtime.events_since`` serves a live run's newer events
from the end of its buffer; every ``seq`` still gets exactly the events after
it, from the buffer or, when older than the buffer, from the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from engine.reader import NodeExecutionRecord, RunReader, RunRecord, _record
from engine.runtime import Runtime
from engine.store import Store
from tests.integration.test_store import TOOLS, loop_doc, run_to_end

pytest_plugins = ["tests.integration.pg"]


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture
def small_buffer(store_url: str) -> Iterator[Runtime]:
    """A runtime whose runs keep only 5 events in memory, so older ones must come from the store."""
    rt = Runtime(tools=TOOLS, database_url=store_url, buffer_events=5)
    try:
        yield rt
    finally:
        rt.shutdown()


def test_events_since_gives_exactly_the_events_after_any_seq(small_buffer: Runtime) -> None:
    run_id = run_to_end(small_buffer, loop_doc("reads-loop"), {"rounds": 4})
    stored = small_buffer.store.events(run_id)
    assert len(stored) > 20
    last = stored[-1].seq
    for seq in range(0, last + 3):  # older than the buffer, inside it, at its end, past it
        assert small_buffer.events_since(run_id, seq) == [e for e in stored if e.seq > seq], seq


def test_reader_records_are_the_orm_rows(small_buffer: Runtime) -> None:
    """The reader's records, built from plain rows, equal the ones built from the ORM objects before."""
    rt = small_buffer
    ids = [run_to_end(rt, loop_doc("reads-loop"), {"rounds": n}) for n in (2, 3)]
    store, reader = rt.store, rt.reader
    for run_id in ids:
        executions = reader.node_executions(run_id)
        assert executions == [_record(NodeExecutionRecord, r) for r in store.node_executions(run_id)]
        assert len(executions) > 10 and all(isinstance(e.reused, bool) for e in executions)
        assert reader.events(run_id, after=3, limit=4) == store.events(run_id)[3:7]
    runs = reader.runs(limit=10)
    assert runs == [_record(RunRecord, r) for r in store.list_runs(limit=10)]
    assert [r.run_id for r in runs] == ids[::-1]
    assert reader.runs(limit=1, status="completed") == runs[:1]
    assert reader.runs(workflow_id="nope") == []


def test_the_newest_runs_come_from_an_index(store_url: str) -> None:
    store = Store(store_url)
    try:
        names = {index["name"] for index in inspect(store.engine).get_indexes("runs")}
    finally:
        store.close()
    assert "ix_runs_created" in names


def test_a_database_made_before_0007_gets_the_index_and_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ix_runs_created")
        conn.execute("DELETE FROM studio_meta WHERE key = 'migration:0007_reads'")
    with RunReader.open(f"sqlite:///{path}") as reader:
        assert reader.runs() == []
    with sqlite3.connect(path) as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute("EXPLAIN QUERY PLAN SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 30")
        )
    assert "ix_runs_created" in plan and "TEMP B-TREE" not in plan, plan


def test_a_database_made_before_0010_gets_the_eval_rows_run_index_and_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ix_eval_rows_run_id")
        conn.execute("DELETE FROM studio_meta WHERE key = 'migration:0010_eval_runs'")
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        query = "EXPLAIN QUERY PLAN SELECT eval_id, row_index FROM eval_rows WHERE run_id IN ('a', 'b')"
        plan = " ".join(str(row[-1]) for row in conn.execute(query))
    assert "ix_eval_rows_run_id" in plan and "SCAN" not in plan, plan
