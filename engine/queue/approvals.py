"""Approvals in queue mode: a decision, a cancel of a waiting run, the timeout sweep; each one transaction.

Why this module exists: in queue mode nothing runs in the process that decides
(the dashboard, the API, the CLI), and nothing holds a waiting run: its job
ended when the run emitted ``run.waiting`` (the worker closes it as
succeeded). So a decision here writes ``approval.decided``, sets the run
``queued`` and defers a new Procrastinate job in ONE transaction, the run's row
locked first: a crash between the steps cannot lose the decision nor queue the
run twice, and of two decisions at once the second finds the run no longer
``waiting`` (NotWaiting). A worker then claims the run like any queued one and
replays its log: every finished node is reused, the approval node completes
with the decision. A cancel of a waiting run ends it in the same way, with no
job at all. Workers apply due timeouts (:func:`apply_due_timeouts`, on every
sweep tick), so no dashboard needs to be open for a timeout to happen.

The events themselves are built by :mod:`engine.approvals`, as in local mode.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from engine.approvals import apply_due_timeouts as sweep_due
from engine.approvals import cancel_events, decided_event
from engine.errors import NotWaiting, RunNotFound
from engine.queue.jobs import defer
from engine.store import Store, read_events
from engine.store.writer import RUNS, apply_events


def locked_status(conn: Connection, run_id: str) -> str | None:
    """The run's status with its row locked for the caller's transaction; None for an unknown run."""
    status = conn.execute(select(RUNS.c.status).where(RUNS.c.run_id == run_id).with_for_update()).scalar()
    return None if status is None else str(status)


def decide(
    engine: Engine,
    run_id: str,
    node: str,
    decision: str | None,
    *,
    fields: Mapping[str, Any] | None = None,
    comment: str = "",
    decided_by: str = "",
    timed_out: bool = False,
) -> None:
    """Record the decision of ``node``'s open approval and queue the run for a worker, in one transaction.

    Raises:
        RunNotFound: no such run.
        NotWaiting: the run is not waiting (another decision or a cancel came first), or ``node`` has no
            open request.
        DecisionInvalid: as :func:`engine.approvals.decision_data`; nothing is written.
    """
    with engine.begin() as conn:
        status = locked_status(conn, run_id)
        if status is None:
            raise RunNotFound(run_id)
        if status != "waiting":
            raise NotWaiting(f"run '{run_id}' is {status}, not waiting for a decision")
        decided = decided_event(
            run_id,
            read_events(conn, run_id),
            node,
            decision,
            fields=fields,
            comment=comment,
            decided_by=decided_by,
            timed_out=timed_out,
        )
        apply_events(conn, [decided])
        conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(status="queued", finished_at=None))
        defer(conn, run_id)  # False only if a job of the run waits already: that one continues it


def cancel_waiting(conn: Connection, run_id: str) -> None:
    """End a waiting run ``cancelled`` in the caller's transaction (its row locked by it): open approvals fail
    as cancelled, then ``run.cancelled``."""
    apply_events(conn, cancel_events(run_id, read_events(conn, run_id)))


def apply_due_timeouts(store: Store, now: float | None = None) -> list[tuple[str, str, str | None]]:
    """Decide due approval timeouts with their ``on_timeout`` and queue those runs (a worker's sweep calls it).

    Several workers sweeping at once decide each request once: the loser of the row lock finds the run
    ``queued`` and skips it. Returns (run, node, decision) of each decision made here.
    """

    def queue_decision(run_id: str, node: str, decision: str | None, *, decided_by: str, timed_out: bool) -> None:
        decide(store.engine, run_id, node, decision, decided_by=decided_by, timed_out=timed_out)

    return sweep_due(store, queue_decision, time.time() if now is None else now)


__all__ = ["apply_due_timeouts", "cancel_waiting", "decide", "locked_status"]
