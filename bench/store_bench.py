"""Store read benchmark: reads through the store and the reader against the raw driver, same run, same file.

Why it exists: issue 17 point 4 (reads through the ORM). Each figure is a
same-run ratio, so a loaded machine moves both sides alike:

- ``events``: one run's N events (default 100,000) read with ``RunReader.events``
  (= ``Store.events``) against the raw driver (sqlite3, psycopg for PostgreSQL)
  building the same ``Event`` objects from the same rows. Target <= 1.5x.
- ``events_since_finished``: ``Runtime.events_since(run, 0)`` of that run (not live).
- ``events_since_live``: one poll for 5 new events of a live run whose in-memory
  buffer holds 100 events against one whose buffer holds 10,000 (the default
  size): O(new events) means the two cost the same.
- ``node_executions``: one run's M node executions (default 50,000) with
  ``RunReader.node_executions`` against the raw driver building the same
  ``NodeExecutionRecord``. Target <= 1.5x.
- ``list_runs``: the latest 30 of R runs (default 100,000), ``RunReader.runs(limit=30)``,
  median of 50 calls. Target <= 5 ms.

Both SQLite (a file in a temporary directory) and PostgreSQL (a throwaway
server started like the test suite's, tests/integration/pg.py; skipped with the
reason when none can be started; ``--postgres-url`` uses a running one).

Run: ``python bench/store_bench.py [--events N] [--nodes M] [--runs R] [--repeat K] [--only sqlite|postgres]``.
Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.events import Event  # noqa: E402
from engine.reader import NodeExecutionRecord, RunReader  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.store.tables import EventRow, NodeExecutionRow, RunRow, WorkflowRow, WorkflowVersionRow  # noqa: E402

BIG_RUN = "big-events"
NODES_RUN = "big-nodes"
LIVE_NEW = 5  # new events per live poll
CHUNK = 5_000


def emit(store: str, figure: str, value: float, unit: str, **extra: object) -> None:
    line = {"bench": "store", "store": store, "figure": figure, "value": round(value, 4), "unit": unit, **extra}
    print(json.dumps(line), flush=True)


def best(repeat: int, once: Callable[[], object]) -> float:
    """The best wall time of ``repeat`` calls, seconds (the least disturbed by the machine's load)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return min(times)


def best_pair(repeat: int, raw: Callable[[], object], ours: Callable[[], object]) -> tuple[float, float]:
    """The best times of ``raw`` and ``ours``, called in turn so that a burst of load hits both alike."""
    raws, oursies = [], []
    for _ in range(repeat):
        raws.append(best(1, raw))
        oursies.append(best(1, ours))
    return min(raws), min(oursies)


# --- filling a store --------------------------------------------------------------------------


def _table(model: Any) -> Any:
    return model.__table__


def fill(store: Store, events: int, nodes: int, runs: int) -> None:
    """One workflow, ``runs`` runs (two of them big), ``events`` events of one run, ``nodes`` node rows of another."""
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(
            insert(_table(WorkflowRow)).values(
                id="wf", name="bench", latest_version=1, created_at=now, updated_at=now, archived=False
            )
        )
        conn.execute(
            insert(_table(WorkflowVersionRow)).values(
                workflow_id="wf", version=1, digest="0" * 64, document={"name": "bench"}, created_at=now
            )
        )
    run_rows = [
        {
            "run_id": f"run-{i:06d}",
            "workflow_id": "wf",
            "workflow_version": 1,
            "workflow_name": "bench",
            "inputs": {"topic": f"t{i}"},
            "status": ("completed", "failed", "cancelled")[i % 3],
            "created_at": now - runs + i,
            "finished_at": now - runs + i + 0.5,
            "result": {"answer": i},
            "owner": "bench:1:1",
            "last_seq": 10,
        }
        for i in range(runs - 2)
    ]
    for name in (BIG_RUN, NODES_RUN):
        run_rows.append({**run_rows[0], "run_id": name, "created_at": now - runs - 1, "last_seq": events})
    _insert_chunks(store, _table(RunRow), run_rows)
    _insert_chunks(
        store,
        _table(EventRow),
        (
            {
                "run_id": BIG_RUN,
                "seq": seq,
                "ts": now + seq / 1000,
                "type": "node.completed" if seq % 2 else "node.started",
                "node_id": f"n{seq % 50}",
                "data": {"output": {"text": f"answer number {seq}", "n": seq}, "duration_ms": 1.5, "execution": 0},
            }
            for seq in range(1, events + 1)
        ),
    )
    _insert_chunks(
        store,
        _table(NodeExecutionRow),
        (
            {
                "run_id": NODES_RUN,
                "node_id": f"n{i % 200}",
                "execution": i // 200,
                "iteration": i // 200,
                "status": "succeeded",
                "started_at": now + i,
                "finished_at": now + i + 0.01,
                "duration_ms": 10.0,
                "attempts": 1,
                "input": {"x": i},
                "output": {"text": f"out {i}", "n": i},
                "error": None,
                "started_seq": i * 2 + 1,
                "reused": False,
            }
            for i in range(nodes)
        ),
    )


def _insert_chunks(store: Store, table: Any, rows: Any) -> None:
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)


# --- the raw driver ---------------------------------------------------------------------------

EVENT_SQL = "SELECT seq, run_id, ts, type, node_id, data FROM events WHERE run_id = {p} AND seq > {p} ORDER BY seq"
NODE_COLUMNS = (
    "run_id, node_id, execution, iteration, status, started_at, finished_at, duration_ms, attempts, "
    "input, output, error, started_seq, reused"
)
NODE_SQL = f"SELECT {NODE_COLUMNS} FROM node_executions WHERE run_id = {{p}} ORDER BY started_seq"


class Raw:
    """The same reads with the bare driver, building the same objects."""

    def __init__(self, url: str):
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite:
            self.conn: Any = sqlite3.connect(str(parsed.database))
            self.p = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
            self.p = "%s"

    def _json(self, value: Any) -> Any:
        return json.loads(value) if self.sqlite and value is not None else value

    def events(self, run_id: str, after: int = 0) -> list[Event]:
        cur = self.conn.cursor()
        cur.execute(EVENT_SQL.format(p=self.p), (run_id, after))
        loads = self._json
        out = [Event(seq, rid, ts, kind, node, loads(data)) for seq, rid, ts, kind, node, data in cur.fetchall()]
        self._end()
        return out

    def node_executions(self, run_id: str) -> list[NodeExecutionRecord]:
        cur = self.conn.cursor()
        cur.execute(NODE_SQL.format(p=self.p), (run_id,))
        loads = self._json
        out = [
            NodeExecutionRecord(*r[:9], loads(r[9]), loads(r[10]), r[11], r[12], bool(r[13]))  # type: ignore[misc]
            for r in cur.fetchall()
        ]
        self._end()
        return out

    def _end(self) -> None:
        if not self.sqlite:
            self.conn.rollback()  # end the read transaction, as the store's sessions do

    def close(self) -> None:
        self.conn.close()


# --- the figures ------------------------------------------------------------------------------


def bench_store(name: str, url: str, data_dir: str, args: argparse.Namespace) -> None:
    from engine.config import Settings
    from engine.runtime import Runtime

    settings = Settings.from_env()
    started = time.perf_counter()
    store = Store(url, data_dir=data_dir, settings=settings)
    fill(store, args.events, args.nodes, args.runs)
    store.close()
    emit(name, "fill", time.perf_counter() - started, "s", events=args.events, nodes=args.nodes, runs=args.runs)

    reader = RunReader.open(url, data_dir=data_dir, settings=settings)
    raw = Raw(url)
    try:
        assert len(reader.events(BIG_RUN)) == args.events
        assert raw.events(BIG_RUN) == reader.events(BIG_RUN)[: args.events]
        t_raw, t_reader = best_pair(args.repeat, lambda: raw.events(BIG_RUN), lambda: reader.events(BIG_RUN))
        emit(name, "events_raw", t_raw, "s", events=args.events)
        emit(name, "events_reader", t_reader, "s", events=args.events)
        emit(name, "events_ratio", t_reader / t_raw, "x", target=1.5)

        assert raw.node_executions(NODES_RUN) == reader.node_executions(NODES_RUN)
        n_raw, n_reader = best_pair(
            args.repeat, lambda: raw.node_executions(NODES_RUN), lambda: reader.node_executions(NODES_RUN)
        )
        emit(name, "node_executions_raw", n_raw, "s", nodes=args.nodes)
        emit(name, "node_executions_reader", n_reader, "s", nodes=args.nodes)
        emit(name, "node_executions_ratio", n_reader / n_raw, "x", target=1.5)

        latest = reader.runs(limit=30)
        assert [r.run_id for r in latest] == [f"run-{i:06d}" for i in range(args.runs - 3, args.runs - 33, -1)]
        timings = []
        for _ in range(50):
            t0 = time.perf_counter()
            reader.runs(limit=30)
            timings.append(time.perf_counter() - t0)
        emit(name, "list_runs_latest30", statistics.median(timings) * 1000, "ms", runs=args.runs, target_ms=5)
        emit(name, "list_runs_latest30_best", min(timings) * 1000, "ms", runs=args.runs)
    finally:
        raw.close()
        reader.close()

    runtime = Runtime(database_url=url, data_dir=data_dir, settings=settings)
    try:
        s_time = best(args.repeat, lambda: runtime.events_since(BIG_RUN, 0))
        emit(name, "events_since_finished", s_time, "s", events=args.events)
        emit(name, "events_since_finished_ratio", s_time / t_raw, "x")
        for size in (100, 10_000):
            with _live_run(runtime, f"live-{size}", size) as seq:
                polls = 2_000
                t0 = time.perf_counter()
                for _ in range(polls):
                    got = runtime.events_since(f"live-{size}", seq - LIVE_NEW)
                per_poll = (time.perf_counter() - t0) / polls * 1e6
                assert len(got) == LIVE_NEW and got[-1].seq == seq
            emit(name, "events_since_live_poll", per_poll, "us", buffered=size, new_events=LIVE_NEW)
    finally:
        runtime.shutdown()


@contextmanager
def _live_run(runtime: Any, run_id: str, size: int) -> Iterator[int]:
    """A run registered as live in ``runtime`` whose buffer holds ``size`` events (white box: no workflow runs)."""
    live = runtime._register(run_id, "bench", {}, created_at=time.time())
    for seq in range(1, size + 1):
        live.buffer.append(Event(seq, run_id, time.time(), "node.started", "n", {}))
    live.last_seq = size
    try:
        yield size
    finally:
        live.status = "completed"
        with runtime._lock:
            runtime._runs.pop(run_id, None)


@contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    from tests.integration.pg import _pg_bin, _Server

    bin_dir = _pg_bin()
    if bin_dir is None:
        print(json.dumps({"bench": "store", "store": "postgres", "skipped": "no PostgreSQL binaries"}), flush=True)
        yield None
        return
    server = _Server(bin_dir)
    try:
        try:
            found = server.start()
        except Exception as exc:  # report why, then go on without PostgreSQL
            print(json.dumps({"bench": "store", "store": "postgres", "skipped": str(exc)}), flush=True)
            found = None
        yield found
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        if args.only != "postgres":
            bench_store("sqlite", f"sqlite:///{tmp}/studio.db", tmp, args)
        if args.only != "sqlite":
            with _postgres(args.postgres_url) as url:
                if url is not None:
                    bench_store("postgres", url, tmp, args)


if __name__ == "__main__":
    main()
