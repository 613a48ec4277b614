"""The store's one writer: a thread that commits events and their projections.

Everything that changes the database during runs goes through one queue to
one thread with its own connection. It drains whatever is queued and commits
it in one transaction (group commit), so a burst of events costs one fsync,
and it never splits an event from the row changes it implies: each event is
inserted together with its effect on ``runs`` and ``node_executions``.
What is committed is always a prefix of each run's event log. This is what
keeps 50 concurrent runs free of "database is locked".

A run under a fence (queue mode, :mod:`engine.queue`: ``fence(run_id, epoch)``) commits
only while its ``runs.lease_epoch`` still equals that epoch: the check takes the run's
row lock first in each transaction, so once another worker's claim (or the sweep) has
raised the epoch, not one more event of this writer's lands. Losing the fence stops
the run here (``on_failure``) but never marks the row: it is another worker's now.

A batch costs a fixed number of statements however many runs it holds: on PostgreSQL
one ``SELECT … FOR NO KEY UPDATE`` locks and checks every fenced run, each table's rows
go in one ``INSERT``/``UPDATE … FROM unnest(…)``, and one ``SELECT pg_notify(…) FROM
unnest(…)`` sends the NOTIFY of every run. On SQLite inserts are multi-row ``INSERT``s and
updates an executemany, their rows handed to the driver as tuples. A round trip per
run per batch made queue mode's writer fall seconds behind at 1,000 events/s
(docs/benchmarks.md, queue mode). A batch's new run rows are inserted together, ahead
of its events.

A batch holding several runs that fails (say one run's event holds a value
the JSON encoder refuses) is written again run by run, so only the runs whose
own writes fail are failed; the others keep every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, assert_never

from sqlalchemy import JSON, Engine, and_, delete, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError

from engine.events import Event
from engine.statuses import RUN_ENDED, RUN_PAUSED, node_failed_status
from engine.store.tables import EventRow, NodeExecutionRow, RunRow

logger = logging.getLogger(__name__)

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
NODES = NodeExecutionRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
MAX_BATCH = 5000
EVENTS_CHANNEL = "studio_run_events"  # PostgreSQL NOTIFY channel: payload a run id whose events were committed


@dataclass(slots=True)
class _Barrier:
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


@dataclass(slots=True)
class _Statement:
    """A plain statement to run in order with the events (run creation, status changes)."""

    statement: Any
    run_id: str | None = None
    params: dict[str, Any] | None = None  # bound values for a statement built once (no per-call ``.values()``)
    insert_run: bool = False  # ``params`` is a new run's row: inserted with the batch's other new runs at once


WriteFailed = Callable[[str, str], None]  # (run_id, message)


class FenceLost(Exception):
    """A fenced run's lease was taken over: this writer may not commit for it any more."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"run {run_id}: its lease was taken over (another worker or the sweep claimed it)")


class Writer:
    """Owns the write side of the database. ``put_*`` are thread-safe and never block on I/O."""

    def __init__(self, engine: Engine, *, on_failure: WriteFailed | None = None):
        self.engine = engine
        self.on_failure = on_failure
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._committed: dict[str, int] = {}
        self._cond = threading.Condition()
        self._failed_runs: dict[str, str] = {}
        self._waiters: dict[str, list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[bool]]]] = {}
        self._fences: dict[str, int] = {}  # run -> the lease epoch its writes need (queue mode)
        self._thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
        self._stopping = False
        self._thread.start()

    # --- producers ---------------------------------------------------------------

    def put_event(self, event: Event) -> None:
        self._queue.put(event)

    def put_statement(self, statement: Any, run_id: str | None = None, params: dict[str, Any] | None = None) -> None:
        self._queue.put(_Statement(statement, run_id, params))

    def put_run(self, run_id: str, row: dict[str, Any]) -> None:
        """Insert a new run's row (ahead of its events, which come after it). A burst of submits' rows go
        in one statement per batch, not one each."""
        self._queue.put(_Statement(None, run_id, row, insert_run=True))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything queued before this call is committed.

        Raises:
            TimeoutError: the writer did not get there in time.
            RuntimeError: some of those writes failed (the message says why; with runs
                written one by one after a failed batch, the other runs' writes may have landed).
        """
        barrier = _Barrier()
        self._queue.put(barrier)
        if not barrier.done.wait(timeout):
            raise TimeoutError(f"the store writer did not commit within {timeout:g} s")
        if barrier.error:
            raise RuntimeError(barrier.error)

    def fence(self, run_id: str, epoch: int, committed_seq: int) -> None:
        """From now on ``run_id``'s writes commit only while ``runs.lease_epoch`` is ``epoch``.

        Called by a queue worker right after its claim; ``committed_seq`` is the run's last
        stored seq (what a wait for commits may count as done). A failure of an earlier lease
        of this run in this process is forgotten.
        """
        with self._cond:
            self._fences[run_id] = epoch
            self._failed_runs.pop(run_id, None)
            self._committed[run_id] = committed_seq

    def unfence(self, run_id: str) -> None:
        """Forget ``run_id``'s fence (its job has ended in this process)."""
        with self._cond:
            self._fences.pop(run_id, None)

    def committed_seq(self, run_id: str) -> int:
        with self._cond:
            return self._committed.get(run_id, 0)

    def wait_committed(self, run_id: str, seq: int, timeout: float = 5.0) -> bool:
        """Block until ``seq`` of ``run_id`` is committed (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._committed.get(run_id, 0) < seq:
                left = deadline - time.monotonic()
                if left <= 0 or run_id in self._failed_runs:
                    return False
                self._cond.wait(left)
        return True

    def committed_future(self, run_id: str, seq: int) -> asyncio.Future[bool]:
        """A future (of the running loop) resolved once ``seq`` of ``run_id`` is committed (True) or failed (False)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._cond:
            if run_id in self._failed_runs:
                future.set_result(False)
            elif self._committed.get(run_id, 0) >= seq:
                future.set_result(True)
            else:
                self._waiters.setdefault(run_id, []).append((seq, loop, future))
        return future

    def _wake_waiters(self, run_id: str) -> None:
        """Resolve the futures of ``run_id`` that are due (call with ``_cond`` held)."""
        waiting = self._waiters.get(run_id)
        if not waiting:
            return
        failed = run_id in self._failed_runs
        committed = self._committed.get(run_id, 0)
        due = [w for w in waiting if failed or w[0] <= committed]
        if len(due) == len(waiting):
            del self._waiters[run_id]
        else:
            self._waiters[run_id] = [w for w in waiting if w not in due]
        for _seq, loop, future in due:
            loop.call_soon_threadsafe(_resolve, future, not failed)

    def close(self, timeout: float = 30.0) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            self.flush(timeout)
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)

    # --- the writer thread ----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[Any]) -> None:
        barriers = [item for item in batch if isinstance(item, _Barrier)]
        # A run with a failed batch writes nothing more: what is stored stays a prefix of its log.
        work = [item for item in batch if not isinstance(item, _Barrier) and _run_of(item) not in self._failed_runs]
        error = None
        if work:
            error = self._write(work)
            if error is None:
                self._advance(work)
            else:
                groups = _by_run(work)
                if sum(1 for run_id in groups if run_id is not None) < 2:
                    self._fail(work, error)
                else:  # one run's bad event must not cost the others theirs: retry run by run
                    logger.warning("a batch of %d runs failed (%s); retrying it run by run", len(groups), error)
                    error = None
                    for group in groups.values():
                        failed = self._write(group)
                        if failed is None:
                            self._advance(group)
                        else:
                            self._fail(group, failed)
                            error = error or failed
        for barrier in barriers:
            barrier.error = error
            barrier.done.set()

    def _write(self, work: list[Any]) -> str | None:
        """Apply ``work`` in one transaction; None when committed, else why not (rolled back)."""
        with self._cond:
            fences = {run: self._fences[run] for run in map(_run_of, work) if run in self._fences}
        try:
            with self.engine.begin() as conn:
                if fences:
                    _hold_fences(conn, fences)
                _Projection(conn).apply(work)
                if fences:  # queue mode: other processes wake on the commit (engine.queue)
                    _notify(conn, sorted(fences))
        except FenceLost as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - the database's errors, and values no encoder takes: the thread must live on
            return f"the store could not be written: {_reason(exc)}"
        return None

    def _fail(self, work: list[Any], error: str) -> None:
        logger.error("%s", error)
        self._report(work, error)
        self._mark_failed(work, error)

    def _advance(self, work: list[Any]) -> None:
        latest: dict[str, int] = {}
        for item in work:
            if isinstance(item, Event):
                latest[item.run_id] = item.seq
        if latest:
            with self._cond:
                self._committed.update(latest)
                for run_id in latest:
                    self._wake_waiters(run_id)
                self._cond.notify_all()

    def _mark_failed(self, work: list[Any], error: str) -> None:
        """Best effort: record the runs of a failed batch as failed (if this fails too, they read as
        interrupted later)."""
        runs = {run for run in map(_run_of, work) if run is not None}
        if not runs:
            return
        with self._cond:
            fences = {run: self._fences[run] for run in runs if run in self._fences}
        try:
            with self.engine.begin() as conn:
                for run_id in sorted(runs):  # a fenced run is marked only while its lease is still ours
                    where = [RUNS.c.run_id == run_id, RUNS.c.status == "running"]
                    if run_id in fences:
                        where.append(RUNS.c.lease_epoch == fences[run_id])
                    conn.execute(update(RUNS).where(*where).values(status="failed", error=error))
        except (SQLAlchemyError, OSError) as exc:
            logger.error("could not mark runs %s failed either: %s", sorted(runs), _reason(exc))

    def _report(self, work: list[Any], error: str) -> None:
        runs = {item.run_id for item in work if isinstance(item, Event)}
        runs |= {item.run_id for item in work if isinstance(item, _Statement) and item.run_id}
        with self._cond:
            for run_id in runs:
                self._failed_runs[run_id] = error
                self._wake_waiters(run_id)
            self._cond.notify_all()
        if self.on_failure is not None:
            for run_id in runs:
                self.on_failure(run_id, error)


class _Projection:
    """Applies one batch: events in bulk, node rows merged, one run update per run."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.events: list[dict[str, Any]] = []
        self.new_nodes: list[dict[str, Any]] = []  # node rows to insert, in order
        self.open_nodes: dict[tuple[str, str], dict[str, Any]] = {}  # of those, the running ones
        self.unflushed: set[tuple[str, str]] = set()  # (run, node) of the rows in new_nodes
        self.finishes: list[dict[str, Any]] = []  # finishes of rows already inserted, in order, done in bulk
        self.runs: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, list[int]] = {}  # run -> [prompt, completion, of them in failed tries]
        # new runs' rows, inserted first at the next flush: what is queued before a run's row is other runs'
        # events (a run's own come after its creation), which no new run's row can change
        self.new_runs: list[dict[str, Any]] = []

    def apply(self, work: list[Any]) -> None:
        for item in work:
            if isinstance(item, Event):
                self._event(item)
            elif item.insert_run:
                self.new_runs.append(item.params)
            else:
                self._flush()
                self.conn.execute(item.statement, item.params)
        self._flush()

    def _flush(self) -> None:
        self._flush_nodes_only()
        if self.events:
            _insert(self.conn, EVENTS, self.events)
            self.events.clear()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # one executemany per set of columns
        for run_id, values in self.runs.items():
            tokens = self.tokens.pop(run_id, None)
            if tokens:
                values["d_prompt_tokens"], values["d_completion_tokens"] = tokens[0], tokens[1]
                if tokens[2]:
                    values["d_failed_tokens"] = tokens[2]
            row = {("v_" + k if not k.startswith("d_") else k): v for k, v in values.items()}
            groups.setdefault(tuple(sorted(row)), []).append({"r_run_id": run_id, **row})
        for columns, rows in groups.items():
            _update(self.conn, RUNS, ("run_id",), columns, rows)
        self.runs.clear()

    def _run(self, run_id: str) -> dict[str, Any]:
        values = self.runs.get(run_id)
        if values is None:
            values = self.runs[run_id] = {}
        return values

    def _event(self, e: Event) -> None:  # noqa: C901 - one branch per event kind
        data = e.data
        self.events.append(
            {"run_id": e.run_id, "seq": e.seq, "ts": e.ts, "type": e.type, "node_id": e.node_id, "data": dict(data)}
        )
        run = self._run(e.run_id)
        run["last_seq"] = e.seq
        kind = e.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "node.started":
                if data.get("restarted"):  # a resumed run runs this execution again: its old row gives way
                    self._flush()
                    self.conn.execute(
                        delete(NODES).where(
                            and_(
                                NODES.c.run_id == e.run_id,
                                NODES.c.node_id == e.node_id,
                                NODES.c.execution == data.get("execution", 0),
                            )
                        )
                    )
                row = {
                    "run_id": e.run_id,
                    "node_id": e.node_id,
                    "execution": data.get("execution", 0),
                    "iteration": data.get("iteration", 0),
                    "status": "running",
                    "started_at": e.ts,
                    "finished_at": None,
                    "duration_ms": None,
                    "attempts": 0,
                    "input": None,
                    "output": None,
                    "error": None,
                    "started_seq": e.seq,
                    "reused": bool(data.get("reused")),
                }
                self.new_nodes.append(row)
                self.open_nodes[(e.run_id, str(e.node_id))] = row
                self.unflushed.add((e.run_id, str(e.node_id)))
            case "node.completed" | "node.failed":
                changes: dict[str, Any] = {"finished_at": e.ts, "attempts": data.get("attempts", 1)}
                if kind == "node.completed":
                    changes.update(status="succeeded", output=data.get("output"), duration_ms=data.get("duration_ms"))
                else:
                    changes.update(status=node_failed_status(data), error=data.get("error"))
                if "input" in data:
                    changes["input"] = data["input"]
                self._finish_node(e, changes)
            case "node.skipped":
                self.new_nodes.append(
                    {
                        "run_id": e.run_id,
                        "node_id": e.node_id,
                        "execution": data.get("execution", 0),
                        "iteration": data.get("iteration", 0),
                        "status": "skipped",
                        "started_at": e.ts,
                        "finished_at": e.ts,
                        "duration_ms": 0.0,
                        "attempts": 0,
                        "input": None,
                        "output": None,
                        "error": None,
                        "started_seq": e.seq,
                        "reused": False,
                    }
                )
            case "llm.completed":
                tokens = self.tokens.setdefault(e.run_id, [0, 0, 0])
                prompt, completion = int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0)
                tokens[0] += prompt
                tokens[1] += completion
                if data.get("failed"):
                    tokens[2] += prompt + completion
                if data.get("estimated"):
                    run["tokens_estimated"] = True
            case "run.started":
                run["started_at"] = e.ts
                run["status"] = "running"
            case "run.completed" | "run.failed" | "run.cancelled":
                run["status"] = RUN_ENDED[kind]
                run["finished_at"] = e.ts
                if kind == "run.completed":
                    run["result"] = data.get("result")
                    run["error"] = None
                    run["error_node"] = None
                elif kind == "run.failed":
                    run["error"] = data.get("error")
                    run["error_node"] = data.get("node_id")
            case "llm.token" | "tool.called" | "tool.result" | "memory.recalled" | "memory.saved" | "log":
                pass  # stored as events only: no row changes
            case "approval.requested" | "approval.decided":
                pass  # the approval's node row stays running until its decision completes it
            case "run.waiting":
                run["status"] = RUN_PAUSED[kind]
            case _:
                assert_never(kind)

    def _finish_node(self, e: Event, changes: dict[str, Any]) -> None:
        pending = self.open_nodes.pop((e.run_id, str(e.node_id)), None)
        if pending is not None:
            pending.update(changes)
            return
        if (e.run_id, str(e.node_id)) in self.unflushed:  # its running row may be one still to insert: insert first
            self._flush_nodes_only()
        values = {"v_" + k: v for k, v in changes.items()}
        self.finishes.append({"r_run_id": e.run_id, "r_node_id": e.node_id, **values})

    def _flush_nodes_only(self) -> None:
        """Insert the new runs (what the rows below refer to), finish the node rows of earlier batches (before
        any row of this batch exists), then insert the new ones."""
        if self.new_runs:
            created: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self.new_runs:
                created.setdefault(tuple(row), []).append(row)
            for rows in created.values():
                _insert(self.conn, RUNS, rows)
            self.new_runs = []
        if self.finishes:
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self.finishes:
                groups.setdefault(tuple(sorted(k for k in row if k.startswith("v_"))), []).append(row)
            for columns, rows in groups.items():
                _update(self.conn, NODES, ("run_id", "node_id"), columns, rows)
            self.finishes = []
        if self.new_nodes:
            _insert(self.conn, NODES, self.new_nodes)
            self.new_nodes = []
            self.open_nodes.clear()
            self.unflushed.clear()


def apply_events(conn: Any, events: list[Event]) -> None:
    """Insert ``events`` with their effect on the run and node rows, on ``conn`` (the caller's transaction).

    For writes that must share a transaction with other rows (queue mode, PostgreSQL: a cancel of
    a queued run, the sweep's note that a worker died); everything else goes through the writer.
    """
    _Projection(conn).apply(list(events))
    if events:
        _notify(conn, sorted({event.run_id for event in events}))


def _hold_fences(conn: Any, fences: dict[str, int]) -> None:
    """Lock the fenced runs' rows (one statement, in run id order) and check each still has its epoch.

    ``FOR NO KEY UPDATE`` is the lock an ``UPDATE`` of ``runs`` takes, so a claim or the sweep raising an
    epoch waits for this transaction, and this one, once it holds the locks, reads the epoch they committed.

    Raises:
        FenceLost: a run's epoch moved on (the first such run, in id order).
    """
    ids = sorted(fences)
    held = dict(
        conn.exec_driver_sql(
            "SELECT run_id, lease_epoch FROM runs WHERE run_id = ANY(%(ids)s) ORDER BY run_id FOR NO KEY UPDATE",
            {"ids": ids},
        ).all()
    )
    for run_id in ids:
        if held.get(run_id) != fences[run_id]:
            raise FenceLost(run_id)


def _notify(conn: Any, run_ids: list[str]) -> None:
    """PostgreSQL only: tell listeners (delivered on commit, in this order) that these runs have new events.

    One statement for all of them: one NOTIFY per run, one round trip per batch.
    """
    conn.exec_driver_sql(
        "SELECT pg_notify(%(channel)s, run_id) FROM unnest(%(runs)s::text[]) AS r(run_id)",
        {"channel": EVENTS_CHANNEL, "runs": run_ids},
    )


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys): on PostgreSQL one statement whatever their number, elsewhere an
    executemany."""
    missing = _defaults(table.name, tuple(rows[0]))
    if missing:  # the columns' own defaults, as SQLAlchemy's INSERT would have added them
        rows = [{**row, **missing} for row in rows]
    if conn.dialect.name != "postgresql":
        columns = tuple(rows[0])
        processors = _processors(conn.dialect, table.name, columns)
        values = _tuples(rows, columns, processors)
        per = max(1, SQLITE_VARIABLES // len(columns))
        for start in range(0, len(values), per):  # a statement per chunk, not per row: each step releases the GIL
            chunk = values[start : start + per]
            sql = _sqlite_insert(table.name, columns, len(chunk))
            conn.exec_driver_sql(sql, tuple(itertools.chain.from_iterable(chunk)))
        return
    columns = tuple(rows[0])
    params = {f"a{i}": list(map(_to_text(table.c[c]), map(itemgetter(c), rows))) for i, c in enumerate(columns)}
    conn.exec_driver_sql(_pg_insert_sql(table.name, columns), params)


def _update(conn: Any, table: Any, keys: tuple[str, ...], columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Update one row per item of ``rows`` (``r_<key>`` finds it, ``v_<column>`` sets a column, ``d_<column>`` adds
    to it); node rows only while running. On PostgreSQL one statement, elsewhere an executemany."""
    if conn.dialect.name != "postgresql":
        sql, names, processors = _sqlite_update(conn.dialect, table.name, keys, columns)
        conn.exec_driver_sql(sql, _tuples(rows, names, processors))
        return
    names = tuple(f"r_{k}" for k in keys) + columns
    params = {f"a{i}": list(map(_to_text(table.c[n[2:]]), map(itemgetter(n), rows))) for i, n in enumerate(names)}
    conn.exec_driver_sql(_pg_update_sql(table.name, keys, columns), params)


_TABLES = {"events": EVENTS, "node_executions": NODES, "runs": RUNS}


# SQLite: the batch's rows go to the driver's executemany as tuples, each value through its column type's own
# bind processor (JSON columns: the same JSON SQLAlchemy stores). Handing SQLAlchemy the rows as dicts cost
# its per-row parameter processing: half the writer thread's time with 500 runs at once, holding the GIL the
# runtime's loop needed.
Processors = tuple[Callable[[Any], Any] | None, ...]


def _sqlite_variable_limit() -> int:
    """How many values one SQLite statement may bind in this process's SQLite (32,766 since 3.32; 999 before)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as probe:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


SQLITE_VARIABLES = min(32_000, _sqlite_variable_limit())  # values one multi-row INSERT binds at most


@functools.cache
def _defaults(name: str, columns: tuple[str, ...]) -> dict[str, Any]:
    """Scalar defaults of table ``name``'s columns not in ``columns`` (a new run's row leaves out ``lease_epoch``)."""
    table = _TABLES[name]
    return {
        c.name: c.default.arg
        for c in table.c
        if c.name not in columns and c.default is not None and getattr(c.default, "is_scalar", False)
    }


@functools.cache
def _processors(dialect: Any, name: str, columns: tuple[str, ...]) -> Processors:
    """Each of ``columns``' bind processor (None: the value goes as it is)."""
    table = _TABLES[name]
    return tuple(table.c[c].type._cached_bind_processor(dialect) for c in columns)


@functools.lru_cache(maxsize=256)
def _sqlite_insert(name: str, columns: tuple[str, ...], rows: int) -> str:
    """The positional ``INSERT`` of ``rows`` rows of ``columns`` into table ``name``: one statement, one step."""
    row = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {name} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


@functools.cache
def _sqlite_update(
    dialect: Any, name: str, keys: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...], Processors]:
    """The ``UPDATE`` of :func:`_update` on SQLite: its SQL, its parameters' names in order and their processors."""
    table = _TABLES[name]
    sets = [f"{c[2:]} = {c[2:]} + ?" if c.startswith("d_") else f"{c[2:]} = ?" for c in columns]
    where = [f"{k} = ?" for k in keys]
    if table is NODES:
        where.append("status = 'running'")
    names = columns + tuple(f"r_{k}" for k in keys)
    processors = tuple(table.c[n[2:]].type._cached_bind_processor(dialect) for n in names)
    return f"UPDATE {name} SET {', '.join(sets)} WHERE {' AND '.join(where)}", names, processors


def _tuples(rows: list[dict[str, Any]], names: tuple[str, ...], processors: Processors) -> list[tuple[Any, ...]]:
    """``rows`` as tuples of ``names``' values, each through its processor: built column by column (C loops)."""
    columns = [
        list(map(itemgetter(n), rows)) if p is None else list(map(p, map(itemgetter(n), rows)))
        for n, p in zip(names, processors, strict=True)
    ]
    return list(zip(*columns, strict=True))


# PostgreSQL: a batch's values travel as one text array per column, in psycopg's binary format (``%(name)b``):
# its text format escapes every element with a regular expression in Python, 17x slower for 11,000 events (the
# writer's main cost with 500 runs at once); the binary one sends each element's length and bytes as they are.


@functools.cache
def _pg_insert_sql(name: str, columns: tuple[str, ...]) -> str:
    """``INSERT … SELECT … FROM unnest(text arrays)``: every value travels as text and is cast to its column's type."""
    table = _TABLES[name]
    arrays = ", ".join(f"%(a{i})b::text[]" for i in range(len(columns)))
    casts = ", ".join(f"v.a{i}::{_pg_type(table.c[c])}" for i, c in enumerate(columns))
    aliases = ", ".join(f"a{i}" for i in range(len(columns)))
    return f"INSERT INTO {name} ({', '.join(columns)}) SELECT {casts} FROM unnest({arrays}) AS v({aliases})"


@functools.cache
def _pg_update_sql(name: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> str:
    """``UPDATE … FROM unnest(text arrays)``, the PostgreSQL form of :func:`_update`."""
    table = _TABLES[name]
    names = tuple(f"r_{k}" for k in keys) + columns
    arrays = ", ".join(f"%(a{i})b::text[]" for i in range(len(names)))
    aliases = ", ".join(f"a{i}" for i in range(len(names)))
    sets, where = [], []
    for i, n in enumerate(names):
        column, value = n[2:], f"v.a{i}::{_pg_type(table.c[n[2:]])}"
        if n.startswith("r_"):
            where.append(f"t.{column} = {value}")
        elif n.startswith("d_"):
            sets.append(f"{column} = t.{column} + {value}")
        else:
            sets.append(f"{column} = {value}")
    if table is NODES:
        where.append("t.status = 'running'")
    return (
        f"UPDATE {name} AS t SET {', '.join(sets)} FROM unnest({arrays}) AS v({aliases}) WHERE {' AND '.join(where)}"
    )


@functools.cache
def _pg_type(column: Any) -> str:
    return str(column.type.compile(dialect=postgresql.dialect()))


@functools.cache
def _to_text(column: Any) -> Callable[[Any], str | None]:
    """What turns a value into the text PostgreSQL casts to ``column``'s type (JSON columns: its JSON, ``None`` as
    ``null``, as SQLAlchemy's JSON type stores it)."""
    return json.dumps if isinstance(column.type, JSON) else _scalar_text


def _scalar_text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _by_run(work: list[Any]) -> dict[str | None, list[Any]]:
    """``work`` split by run, each run's items in their order (``None``: statements of no one run)."""
    groups: dict[str | None, list[Any]] = {}
    for item in work:
        groups.setdefault(_run_of(item), []).append(item)
    return groups


def _run_of(item: Any) -> str | None:
    if isinstance(item, Event):
        return item.run_id
    if isinstance(item, _Statement):
        return item.run_id
    return None


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
