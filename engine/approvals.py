"""Deciding an approval: which request is open, and whether a decision fits it.

A run whose approval node asked a person ends its task with status
``waiting`` (engine/executor.py); everything about the wait is in its event
log: ``approval.requested`` (message, fields, options, the timeout's due time)
and, once a person or the timeout decided, ``approval.decided``. This module
reads that log and builds the events a decision or a cancel appends, for both
runtimes: :meth:`engine.runtime.Runtime.decide` appends the decision and
continues the run in its own process; in queue mode
(:mod:`engine.queue.approvals`) the decision, the run's ``queued`` status and a
new job are one transaction, and a worker continues the run. Either way every
finished node is reused.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import DecisionInvalid, NotWaiting, RunNotFound
from engine.events import ApprovalDecidedData, Event
from engine.executor import Replay, replay_from_events
from engine.nodes.approval import FAIL
from tools.plain import to_plain

if TYPE_CHECKING:
    from engine.store import Store


def open_requests(replay: Replay) -> dict[tuple[str, int], Mapping[str, Any]]:
    """Requests asked and not decided yet, by (node id, execution)."""
    return {key: data for key, data in replay.requests.items() if key not in replay.decisions}


def open_request(replay: Replay, run_id: str, node: str) -> tuple[int, Mapping[str, Any]]:
    """The open request of ``node``: (execution, request data). NotWaiting when there is none."""
    pending = open_requests(replay)
    found = [key for key in pending if key[0] == node]
    if not found:
        others = ", ".join(sorted({key[0] for key in pending})) or "none"
        raise NotWaiting(f"node '{node}' of run '{run_id}' is not waiting for a decision (waiting: {others})")
    key = max(found, key=lambda k: k[1])
    return key[1], pending[key]


def decision_data(
    request: Mapping[str, Any],
    execution: int,
    decision: str | None,
    *,
    fields: Mapping[str, Any] | None,
    comment: str,
    decided_by: str,
    timed_out: bool = False,
) -> ApprovalDecidedData:
    """The ``approval.decided`` payload; DecisionInvalid for a value or field the request lacks."""
    options = [str(o) for o in request.get("options") or []]
    if not timed_out and decision not in options:
        raise DecisionInvalid(f"decision {decision!r} is not an option; options: {', '.join(options)}")
    given = dict(request.get("fields") or {})
    unknown = sorted(set(fields or {}) - set(given))
    if unknown:
        known = ", ".join(sorted(given)) or "none"
        raise DecisionInvalid(f"unknown field(s) {', '.join(unknown)}; the approval's fields: {known}")
    try:
        edited = to_plain({**given, **dict(fields or {})}, "raise")
    except (TypeError, ValueError) as exc:
        raise DecisionInvalid(f"field values must be JSON: {exc}") from None
    data: ApprovalDecidedData = {
        "decision": decision,
        "fields": edited,
        "comment": str(comment or ""),
        "decided_by": decided_by,
        "decided_at": time.time(),
        "execution": execution,
    }
    if timed_out:
        data["timed_out"] = True
    return data


def due_timeouts(replay: Replay, now: float) -> list[tuple[str, str | None]]:
    """(node, decision) of open requests whose timeout is due; decision None for ``on_timeout: fail``."""
    due: list[tuple[str, str | None]] = []
    for (node, _execution), data in sorted(open_requests(replay).items()):
        timeout_at = data.get("timeout_at")
        if isinstance(timeout_at, int | float) and timeout_at <= now:
            on_timeout = data.get("on_timeout")
            due.append((node, None if on_timeout in (None, FAIL) else str(on_timeout)))
    return due


def decided_event(
    run_id: str,
    events: Sequence[Event],
    node: str,
    decision: str | None,
    *,
    fields: Mapping[str, Any] | None,
    comment: str,
    decided_by: str,
    timed_out: bool = False,
) -> Event:
    """The ``approval.decided`` event that decides ``node``'s open request in the run's log ``events``.

    Raises:
        NotWaiting: ``node`` has no open request. DecisionInvalid: as :func:`decision_data`.
    """
    replay = replay_from_events(list(events))
    execution, request = open_request(replay, run_id, node)
    data = decision_data(
        request, execution, decision, fields=fields, comment=comment, decided_by=decided_by, timed_out=timed_out
    )
    return Event(replay.last_seq + 1, run_id, time.time(), "approval.decided", node, data)


def cancel_events(run_id: str, events: Sequence[Event]) -> list[Event]:
    """What a cancel of a waiting run appends: each open request's node fails as cancelled, then ``run.cancelled``."""
    replay = replay_from_events(list(events))
    seq, now = replay.last_seq, time.time()
    ended: list[Event] = []
    for node, _execution in sorted(open_requests(replay)):
        seq += 1
        failed = {"error": "cancelled", "cancelled": True, "attempts": 1}
        ended.append(Event(seq, run_id, now, "node.failed", node, failed))
    ended.append(Event(seq + 1, run_id, now, "run.cancelled", None, {}))
    return ended


class Decide(Protocol):
    """A runtime's ``decide`` (local: record and continue here; queue mode: record and queue a job)."""

    def __call__(
        self, run_id: str, node: str, decision: str | None, *, decided_by: str, timed_out: bool
    ) -> None: ...


SWEEP_PAGE = 500  # waiting runs read (with their approval events) per query


def apply_due_timeouts(store: Store, decide: Decide, now: float) -> list[tuple[str, str, str | None]]:
    """Decide, through ``decide``, one due approval of each waiting run with its ``on_timeout``.

    One decision continues a run; a run with another due request gets it on the next sweep (it is
    ``waiting`` again by then). A run decided or cancelled meanwhile by someone else is skipped, so
    sweeps of several processes at once decide each request once. Returns (run, node, decision)
    of each decision this call made.
    """
    decided: list[tuple[str, str, str | None]] = []
    page = store.waiting_runs(limit=SWEEP_PAGE)
    while page:
        for run_id, events in store.approval_events(page).items():
            due = due_timeouts(replay_from_events(events), now)
            if not due:
                continue
            node, decision = due[0]
            with contextlib.suppress(NotWaiting, DecisionInvalid, RunNotFound):
                decide(run_id, node, decision, decided_by="timeout", timed_out=True)
                decided.append((run_id, node, decision))
        page = store.waiting_runs(limit=SWEEP_PAGE, after=page[-1]) if len(page) == SWEEP_PAGE else []
    return decided
