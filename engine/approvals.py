"""Deciding an approval: which request is open, and whether a decision fits it.

A run whose approval node asked a person ends its task with status
``waiting`` (engine/executor.py); everything about the wait is in its event
log: ``approval.requested`` (message, fields, options, the timeout's due time)
and, once a person or the timeout decided, ``approval.decided``. This module
reads that log; :meth:`engine.runtime.Runtime.decide` appends the decision and
continues the run with every finished node reused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from engine.errors import DecisionInvalid, NotWaiting
from engine.events import ApprovalDecidedData
from engine.executor import Replay
from engine.nodes.approval import FAIL
from tools.plain import to_plain


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
