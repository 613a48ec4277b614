"""The node executions a resume ran again: kept, so a resumed run's history stays honest.

A resume re-runs each node execution that had begun but not completed (it
failed, was cancelled by the failure, or was cut off by a crash): its new
``node.started`` says ``"restarted": true`` and the store's row of that
execution gives way to the new one. The earlier try is still in the event log;
:class:`EarlierAttempts` folds it back out, with its status, times, input and
error text, so the History page, the Run page and ``python -m engine show`` list
it as an earlier attempt next to the execution that replaced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, assert_never

from engine.events import Event
from engine.run_times import is_resume_marker
from engine.statuses import NodeStatus, node_failed_status


@dataclass(slots=True)
class Attempt:
    """One try of one node execution, as the events tell it.

    ``period`` is the run's running period it belongs to (1: before the first resume, 2: after it, ...).
    ``status``: running (cut off: the run stopped or crashed under it), failed, cancelled or succeeded.
    """

    node_id: str
    execution: int
    iteration: int
    period: int
    status: NodeStatus
    started_at: float
    started_seq: int
    finished_at: float | None = None
    error: str | None = None
    input: Any = None

    @property
    def duration_ms(self) -> float | None:
        return (self.finished_at - self.started_at) * 1000 if self.finished_at is not None else None

    @property
    def shown_status(self) -> NodeStatus | Literal["interrupted"]:
        """As the pages say it: an attempt cut off while running was interrupted."""
        return "interrupted" if self.status == "running" else self.status


class EarlierAttempts:
    """Folds a run's events (in ``seq`` order, incrementally) into the attempts a resume replaced."""

    __slots__ = ("_open", "_running", "attempts", "period")

    def __init__(self) -> None:
        self.period = 1
        self._open: dict[tuple[str, int], Attempt] = {}  # the latest try of each execution not completed
        self._running: dict[str, Attempt] = {}  # node -> its try now running (one at a time per node)
        self.attempts: list[Attempt] = []  # the replaced tries, in the order they began

    def apply(self, event: Event) -> None:
        node, kind = event.node_id, event.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "log":
                if is_resume_marker(event):
                    self.period += 1
            case "node.started":
                if node is not None:
                    self._started(node, event)
            case "node.completed" | "node.failed":
                if node is not None:
                    self._finished(node, event)
            case "node.skipped" | "llm.token" | "llm.completed" | "tool.called" | "tool.result":
                pass
            case "memory.recalled" | "memory.saved" | "run.started" | "run.completed" | "run.failed" | "run.cancelled":
                pass
            case "approval.requested" | "approval.decided" | "run.waiting":
                pass
            case _:
                assert_never(kind)

    def _started(self, node: str, event: Event) -> None:
        data = event.data
        key = (node, int(data.get("execution", 0)))
        if data.get("restarted") and key in self._open:
            self.attempts.append(self._open[key])
            self.attempts.sort(key=lambda a: a.started_seq)
        self._open[key] = self._running[node] = Attempt(
            node_id=node,
            execution=key[1],
            iteration=int(data.get("iteration", 0)),
            period=self.period,
            status="running",
            started_at=event.ts,
            started_seq=event.seq,
        )

    def _finished(self, node: str, event: Event) -> None:
        data = event.data
        attempt = self._running.pop(node, None)
        if attempt is None:
            return
        attempt.finished_at = event.ts
        if event.type == "node.completed":  # a completed execution is never run again: forget it
            attempt.status = "succeeded"
            self._open.pop((node, attempt.execution), None)
        else:
            attempt.status = node_failed_status(data)
            attempt.error = str(data.get("error")) if data.get("error") is not None else None
        if "input" in data:
            attempt.input = data["input"]


def earlier_attempts(events: Iterable[Event]) -> list[Attempt]:
    """The attempts of ``events``' run that a resume replaced, in the order they began."""
    fold = EarlierAttempts()
    for event in events:
        fold.apply(event)
    return fold.attempts
