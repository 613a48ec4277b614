"""``QueueRuntime``: the Runtime of the dashboard, the API and the CLI in queue mode.

It keeps :class:`~engine.runtime.Runtime`'s contract (the same validation, the
idempotent caller-chosen run id, a saved workflow version, ``runtime.reader`` for
reads) but executes nothing itself: ``submit``, ``resume`` and ``rerun`` (from a node)
write the run's row as ``queued`` together with one Procrastinate job (:mod:`engine.queue.jobs`), and
``python -m engine worker`` processes run it. ``cancel`` reaches the worker running
the run through Procrastinate's abort (a NOTIFY); a run still queued is cancelled
at once without starting. Events and statuses are read from the store; a
waiting reader (the API's streams, the Run page, the CLI) wakes on the
workers' ``NOTIFY`` of each committed batch (:data:`~engine.store.writer.EVENTS_CHANNEL`,
one listening connection per process) and polls every :data:`SAFETY_POLL_S`
as well, since a notification lost during a reconnect is not replayed.
The notifications are not answered one run at a time: a fetcher thread takes every
run notified since its last pass that has a waiting reader and reads all their new
events in ONE query (per-run cursors through ``unnest``), then wakes each run's readers
with theirs; 100 streams woken by one committed batch cost one round trip, not 100.

Approvals (:mod:`engine.queue.approvals`): a run waiting for a decision holds no
job; ``decide`` records the decision and queues the run with a new job in one
transaction, ``cancel`` of a waiting run ends it here; the workers apply due
timeouts, so this process does not sweep for them.

Node tests and "try a tool" still run in this process (they are not runs).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.config import Settings
from engine.events import Event
from engine.fork import request_of
from engine.inputs import check_inputs
from engine.llm import ChatModel
from engine.model import Workflow
from engine.queue.approvals import cancel_waiting
from engine.queue.approvals import decide as queue_decide
from engine.queue.jobs import call, conninfo, defer, has_schema, run_jobs
from engine.queue.mode import QueueModeInvalid, require_postgres
from engine.queue.shared import shared_memory
from engine.runtime import _RUN_ID, RESUMABLE, NotResumable, RunInfo, RunNotFound, Runtime
from engine.settings import Settings as SavedSettings
from engine.store import WorkflowRef
from engine.store.db import database_url as resolve_url
from engine.store.shared_settings import apply_shared, load_shared, save_shared
from engine.store.writer import EVENTS, EVENTS_CHANNEL, RUNS, apply_events
from engine.validate import load_workflow

logger = logging.getLogger(__name__)

SAFETY_POLL_S = 0.5  # a wait reads the store at least this often, notified or not
COALESCE_S = 0.002  # the fetcher lets the rest of a committed batch's notifications arrive before it reads

# The new events of several runs, each after its own cursor, in one round trip (the fetcher's query).
_EVENTS_OF_RUNS = text(
    "SELECT e.seq, e.run_id, e.ts, e.type, e.node_id, e.data"
    " FROM unnest(CAST(:ids AS text[]), CAST(:afters AS bigint[])) AS c(run_id, after)"
    " JOIN events e ON e.run_id = c.run_id AND e.seq > c.after"
    " ORDER BY e.run_id, e.seq"
).columns(EVENTS.c.seq, EVENTS.c.run_id, EVENTS.c.ts, EVENTS.c.type, EVENTS.c.node_id, EVENTS.c.data)


class QueueRuntime(Runtime):
    """Submits runs to the queue and reads them from the store (``EXECUTION_MODE=queue``).

    Raises:
        QueueModeInvalid: the store is not PostgreSQL, or ``python -m engine migrate`` has not been run.
        StoreError: the store cannot be opened.
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        llm: ChatModel | None = None,
        settings: Settings | None = None,
        **options: Any,
    ):
        settings = settings or Settings.from_env()
        url = resolve_url(database_url, settings=settings)
        require_postgres(url)
        settings = shared_memory(settings, url, refuse=False)  # the memory pages show the workers' memory
        super().__init__(database_url=url, llm=llm, settings=settings, **options)
        if not has_schema(self.store.engine):
            self.shutdown()
            raise QueueModeInvalid("the queue's tables are missing: run `python -m engine migrate` once first")
        self.update_settings(apply_shared(self.settings, load_shared(self.store.engine)))  # saved on any machine
        # Guarded by self._lock:
        self._notified: dict[str, int] = {}  # run -> notifications handled (a waiter compares before and after)
        self._lock = threading.Lock()
        self._last_read: dict[str, tuple[int, int, float]] = {}  # run -> (seq read up to, notifications then, when)
        self._wakes: dict[str, tuple[threading.Condition, list[int]]] = {}  # run -> its condition, waiters count
        self._cursors: dict[str, list[int]] = {}  # run -> the seq each waiting reader has read up to
        self._dirty: set[str] = set()  # runs notified and not handled yet by the fetcher
        self._fetched: dict[str, tuple[int, list[Event], int]] = {}  # run -> (after, its events, notifications then)
        self._last_status: dict[str, float] = {}  # run -> when a waiting reader last asked for its status
        self._note = threading.Condition(self._lock)  # the listener wakes the fetcher
        self.shared_reads = 0  # the fetcher's queries (each serves every notified run with a waiting reader)
        self._listening = True
        self._listener = threading.Thread(target=self._listen, args=(conninfo(url),), name="queue-listen", daemon=True)
        self._listener.start()
        self._fetcher = threading.Thread(target=self._fetch, name="queue-fetch", daemon=True)
        self._fetcher.start()

    def _listen(self, dsn: str) -> None:
        """LISTEN for committed batches; reconnects after a lost connection (the safety poll covers the gap)."""
        while self._listening:
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    while self._listening:
                        for note in conn.notifies(timeout=1.0):
                            with self._lock:
                                self._dirty.add(note.payload)
                                self._note.notify()
            except psycopg.Error:
                time.sleep(1.0)

    def _fetch(self) -> None:
        """Hand each notified run's waiting readers their new events: one query for all the runs notified since the
        last pass (the notifications arriving during a query are handled together in the next one)."""
        while self._listening:
            with self._lock:
                if not self._note.wait_for(lambda: bool(self._dirty) or not self._listening, timeout=1.0):
                    continue
            time.sleep(COALESCE_S)  # one batch's notifications come together: read them in one query
            with self._lock:
                dirty, self._dirty = self._dirty, set()
                cursors = {run_id: min(self._cursors[run_id]) for run_id in dirty if self._cursors.get(run_id)}
                generation = {run_id: self._notified.get(run_id, 0) + 1 for run_id in dirty}
            fetched: dict[str, list[Event]] = {run_id: [] for run_id in cursors}
            if cursors:
                try:
                    with self.store.engine.connect() as conn:
                        rows = conn.execute(_EVENTS_OF_RUNS, {"ids": list(cursors), "afters": list(cursors.values())})
                        for row in rows:
                            fetched[row[1]].append(Event(*row))
                    self.shared_reads += 1
                except Exception:  # the readers read the store themselves (their safety poll, or on waking)
                    logger.warning("reading the notified runs' events failed; each reader reads its own", exc_info=True)
                    fetched = {}
            with self._lock:
                for run_id in dirty:
                    if run_id in fetched:
                        self._fetched[run_id] = (cursors[run_id], fetched[run_id], generation[run_id])
                    else:
                        self._fetched.pop(run_id, None)
                    self._notified[run_id] = generation[run_id]
                    waiting = self._wakes.get(run_id)
                    if waiting is not None:  # wake this run's readers only, not every reader
                        waiting[0].notify_all()

    def _wait_notified(self, run_id: str, seen: int, timeout: float, cursor: int | None = None) -> bool:
        """Block until ``run_id`` is notified after ``seen`` notifications (True), or ``timeout`` passes.

        A reader that gives its ``cursor`` (the seq it has read up to) has the fetcher read its new events for it.
        """
        with self._lock:
            cond, count = self._wakes.setdefault(run_id, (threading.Condition(self._lock), [0]))
            count[0] += 1
            if cursor is not None:
                self._cursors.setdefault(run_id, []).append(cursor)
            try:
                return cond.wait_for(lambda: self._notified.get(run_id, 0) > seen, timeout=max(0.0, timeout))
            finally:
                count[0] -= 1
                if count[0] == 0:
                    del self._wakes[run_id]
                if cursor is not None:
                    cursors = self._cursors[run_id]
                    cursors.remove(cursor)
                    if not cursors:
                        del self._cursors[run_id]

    def _handed(self, run_id: str, seq: int) -> tuple[list[Event], int] | None:
        """What the fetcher read for ``run_id`` after ``seq``, and the notification count it answers; None when
        it read nothing that covers ``seq`` (the reader then reads the store itself)."""
        with self._lock:
            got = self._fetched.get(run_id)
            if run_id not in self._wakes:  # the last reader it was for: forget it (a later one reads the store)
                self._fetched.pop(run_id, None)
        if got is None or got[0] > seq:
            return None
        after, events, generation = got
        return [e for e in events if e.seq > seq], generation

    def _seen(self, run_id: str) -> int:
        with self._lock:
            return self._notified.get(run_id, 0)

    def shutdown(self, timeout: float = 30.0) -> None:
        self._listening = False
        listener = getattr(self, "_listener", None)
        if listener is not None:
            with contextlib.suppress(RuntimeError):
                listener.join(3.0)
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None:
            with contextlib.suppress(RuntimeError):
                fetcher.join(3.0)
        super().shutdown(timeout)

    def save_settings(self, saved: SavedSettings, *, keep: Collection[str] = ()) -> Path:
        """The Settings page's Save, also written to the database (table ``studio_settings``), where every worker
        reads it when a run starts (:mod:`engine.store.shared_settings`); the local file as well."""
        save_shared(self.store.engine, saved, keep=keep)
        return super().save_settings(saved, keep=keep)

    def _mark_dead_owners(self) -> list[str]:
        return []  # the workers' sweep notices dead workers (engine.queue.worker)

    async def _beat(self, every_s: float) -> None:
        """Nothing to do here: runs execute on workers, which heartbeat them and apply due approval timeouts
        (engine.queue.worker), so a timeout happens with no dashboard, API or CLI open."""

    # --- runs ------------------------------------------------------------------------------

    def submit(
        self,
        workflow: Workflow | Mapping[str, Any] | str,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> str:
        """Queue a run; returns its id at once (the contract of :meth:`Runtime.submit`)."""
        self._check_open()
        if run_id is not None and not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"run id must be 32 lowercase hex digits, not {run_id[:40]!r}")
        loaded = load_workflow(workflow)
        values = check_inputs(loaded, inputs)
        if run_id is not None and self.store.get_run(run_id) is not None:
            return run_id
        ref = self.store.save_loaded(loaded)
        run_id = run_id or uuid.uuid4().hex
        try:
            self._queue_new(run_id, ref, values)
        except IntegrityError:  # the same run id submitted at once elsewhere: that one stands
            if self.store.get_run(run_id) is None:
                raise
        return run_id

    def _queue_new(
        self, run_id: str, ref: WorkflowRef, inputs: dict[str, Any], *, forked_from: dict[str, Any] | None = None
    ) -> None:
        """Write a new run's row as ``queued`` and its job in one transaction (never one without the other)."""
        row = {
            "run_id": run_id,
            "workflow_id": ref.id,
            "workflow_version": ref.version,
            "workflow_name": ref.name,
            "inputs": inputs,
            "status": "queued",
            "created_at": time.time(),
            "owner": "",
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "tokens_estimated": False,
            "failed_tokens": 0,
            "last_seq": 0,
            "resumed": 0,
            "lease_epoch": 0,
            "forked_from": forked_from,
        }
        with self.store.engine.begin() as conn:
            conn.execute(insert(RUNS).values(**row))
            defer(conn, run_id)

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued, running or waiting run from any process; True if it was one of those.

        A queued run ends ``cancelled`` here and now, and so does a waiting one (its open approvals
        fail as cancelled; it has no job); a running one is aborted on its worker, which ends it
        through the engine's cancel path.
        """
        with self.store.engine.begin() as conn:
            row = conn.execute(
                select(RUNS.c.status, RUNS.c.last_seq, RUNS.c.inputs, RUNS.c.workflow_name, RUNS.c.forked_from)
                .where(RUNS.c.run_id == run_id)
                .with_for_update()
            ).first()
            if row is not None and row.status == "waiting":  # it holds no job: it ends here
                cancel_waiting(conn, run_id)
                return True
            if row is None or row.status not in ("queued", "running"):
                return False
            for job in run_jobs(conn, run_id):
                call(conn, "cancel_job", job_id=job["id"], abort=True, delete_job=False)
            if row.status == "queued":  # no worker holds it: it ends here, as a local run cancelled before it started
                now, seq = time.time(), row.last_seq
                events = []
                if seq == 0:
                    seq += 1
                    started: dict[str, Any] = {"inputs": row.inputs, "workflow": row.workflow_name}
                    if row.forked_from:  # a rerun: as local mode's run.started says
                        started["forked_from"] = request_of(row.forked_from)[1]
                    events.append(Event(seq, run_id, now, "run.started", None, started))
                events.append(Event(seq + 1, run_id, now, "run.cancelled", None, {}))
                apply_events(conn, events)
        return True

    def resume(self, run_id: str) -> str:
        """Queue an interrupted or failed run again; a worker continues it from its committed events.

        Raises:
            RunNotFound, NotResumable: as :meth:`Runtime.resume`.
        """
        self._check_open()
        row = self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        if self.store.get_workflow(row.workflow_id, row.workflow_version) is None:
            raise NotResumable(f"run '{run_id}': its workflow version is missing from the store")
        with self.store.engine.begin() as conn:
            queued = conn.execute(
                update(RUNS)
                .where(RUNS.c.run_id == run_id, RUNS.c.status.in_(RESUMABLE))
                .values(status="queued", error=None, error_node=None, finished_at=None)
                .returning(RUNS.c.run_id)
            ).first()
            if queued is None:
                status = conn.execute(select(RUNS.c.status).where(RUNS.c.run_id == run_id)).scalar()
                hint = ""
                if status == "waiting":
                    hint = f" (decide it with: python -m engine approve {run_id} NODE --decision V)"
                raise NotResumable(f"run '{run_id}' is {status}; only interrupted or failed runs can be resumed{hint}")
            defer(conn, run_id)
        return run_id

    def decide(
        self,
        run_id: str,
        node: str,
        decision: str | None,
        *,
        fields: Mapping[str, Any] | None = None,
        comment: str = "",
        decided_by: str = "",
        timed_out: bool = False,
    ) -> None:
        """Decide ``node``'s open approval of waiting run ``run_id``; a worker continues the run (returns at once).

        ``approval.decided``, the run's ``queued`` status and its new job are one transaction
        (:func:`engine.queue.approvals.decide`); nothing runs in this process.

        Raises:
            RunNotFound, NotWaiting, DecisionInvalid: as :meth:`Runtime.decide`.
        """
        self._check_open()
        queue_decide(
            self.store.engine,
            run_id,
            node,
            decision,
            fields=fields,
            comment=comment,
            decided_by=decided_by,
            timed_out=timed_out,
        )

    def rerun(
        self,
        run_id: str,
        node: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue a rerun of ``run_id`` from ``node`` (a fork); returns the new run's id at once.

        The checks are :meth:`Runtime.rerun`'s (same errors); the new run's row, ``queued`` with its
        ``forked_from`` (the pinned values under ``"pins"``, :func:`engine.fork.fork_record`), and its job
        are one transaction. The worker that claims it builds the replay from the source run's events.

        Raises:
            RunNotFound, NotForkable, ForkInvalid: as :meth:`Runtime.rerun`.
        """
        self._check_open()
        fork = self._prepare_fork(run_id, node, outputs=outputs, config=config)
        row = fork.source
        new_id = uuid.uuid4().hex
        ref = WorkflowRef(row.workflow_id, row.workflow_version, row.workflow_name, False)
        self._queue_new(new_id, ref, dict(row.inputs), forked_from=fork.record)
        return new_id

    def delete_run(self, run_id: str) -> bool:
        """Delete a finished run (False if unknown, queued or running)."""
        info = self.status(run_id)
        if info is None or info.status == "queued":
            return False
        return super().delete_run(run_id)

    # --- reading: the store is the only truth here -------------------------------------------

    def events_since(self, run_id: str, seq: int = 0, *, wait_s: float = 0.0) -> list[Event]:
        """Stored events after ``seq``; with ``wait_s``, waits up to that long for a first one (woken by NOTIFY).

        A waiting reader queries the store only when the run was notified since its last read
        (or :data:`SAFETY_POLL_S` has passed), and asks for the run's status only when no
        notification woke it: about one query per committed batch, however many runs are followed.
        """
        if wait_s <= 0:
            return self.store.events(run_id, after=seq)
        deadline = time.monotonic() + wait_s
        notified = False
        while True:
            seen = self._seen(run_id)
            last = self._last_read.get(run_id)
            handed = self._handed(run_id, seq) if notified else None
            if handed is not None and handed[1] == seen:  # the fetcher read this notification's events for us
                events = handed[0]
                self._last_read[run_id] = (events[-1].seq if events else seq, seen, time.monotonic())
                if events:
                    return events
            elif not (last is not None and last[:2] == (seq, seen) and time.monotonic() - last[2] < SAFETY_POLL_S):
                events = self.store.events(run_id, after=seq)  # something may be new: read
                upto = events[-1].seq if events else seq
                self._last_read[run_id] = (upto, seen, time.monotonic())
                if events:
                    return events
            if time.monotonic() >= deadline:
                return []
            now = time.monotonic()
            if not notified and now - self._last_status.get(run_id, 0.0) >= SAFETY_POLL_S:
                # first call, or a safety poll (at most one per SAFETY_POLL_S, not one per wake): has the run ended?
                if len(self._last_status) > 4096:  # forget runs nobody asked about lately
                    self._last_status = {r: t for r, t in self._last_status.items() if now - t < SAFETY_POLL_S}
                self._last_status[run_id] = now
                info = self.status(run_id)
                if info is None or (info.finished and info.last_seq <= seq):
                    return []
            left = min(SAFETY_POLL_S, deadline - time.monotonic())
            notified = self._wait_notified(run_id, seen, left, cursor=seq)

    def wait(self, run_id: str, timeout: float | None = None) -> RunInfo:
        """Block until the run has finished (or the timeout passes); returns its state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = self._seen(run_id)
            info = self.status(run_id)
            if info is None:
                raise RunNotFound(run_id)
            if info.finished or (deadline is not None and time.monotonic() >= deadline):
                return info
            left = SAFETY_POLL_S if deadline is None else min(SAFETY_POLL_S, deadline - time.monotonic())
            self._wait_notified(run_id, seen, left)


__all__ = ["QueueRuntime"]
