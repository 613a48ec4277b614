"""Run and node statuses: how they are derived from events and how they look.

The words are engine/statuses.py's (one vocabulary); this module gives each its colour and badge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import assert_never

from engine.attempts import EarlierAttempts
from engine.costs import Usage
from engine.events import Event
from engine.run_times import RunClock
from engine.statuses import NodeStatus, node_failed_status

# background, border
COLOURS: dict[str, tuple[str, str]] = {  # keyed by NodeStatus
    "pending": ("#ffffff", "#a1a1aa"),
    "running": ("#dbeafe", "#2563eb"),
    "waiting": ("#fef9c3", "#ca8a04"),  # an approval asks a person: nothing runs until a decision
    "succeeded": ("#dcfce7", "#16a34a"),
    "failed": ("#fee2e2", "#dc2626"),
    "skipped": ("#f4f4f5", "#d4d4d8"),
    "cancelled": ("#fef3c7", "#d97706"),
    "reused": ("#ede9fe", "#8b5cf6"),  # a fork took the source run's output: nothing ran (drawn dashed)
}
RUN_BADGES: dict[str, str] = {  # keyed by RunStatus
    "queued": ":gray-badge[queued]",
    "running": ":blue-badge[running]",
    "waiting": ":yellow-badge[:material/hourglass_top: waiting]",
    "completed": ":green-badge[completed]",
    "failed": ":red-badge[failed]",
    "cancelled": ":orange-badge[cancelled]",
    "interrupted": ":violet-badge[interrupted]",
}


@dataclass
class RunView:
    """What the Run page shows, folded from a run's events (incrementally)."""

    node_status: dict[str, NodeStatus] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # node -> streamed text of its current step
    token_marks: dict[str, tuple[object, object]] = field(default_factory=dict)  # node -> (attempt, step) streaming
    # (a failed try's llm.completed drops the node's mark: the retry's first delta starts the text afresh)
    tool_calls: dict[str, dict] = field(default_factory=dict)  # call_id -> called + result
    memory: list[Event] = field(default_factory=list)
    logs: list[Event] = field(default_factory=list)
    approvals: dict[str, Event] = field(default_factory=dict)  # node -> its open approval.requested
    started_ts: float | None = None
    finished_ts: float | None = None
    terminal: Event | None = None
    last_seq: int = 0
    usage: Usage = field(default_factory=Usage)  # tokens per model (totals and the cost derive from it)
    clock: RunClock = field(default_factory=RunClock)  # start, end, idle gaps: active and wall time
    earlier: EarlierAttempts = field(default_factory=EarlierAttempts)  # the tries a resume replaced

    def apply(self, events: Iterable[Event]) -> None:
        """Fold events in; ones already folded (``seq`` not above ``last_seq``) are ignored."""
        for event in events:
            if event.seq > self.last_seq:
                self._apply(event)

    def _apply(self, event: Event) -> None:  # noqa: C901 - one branch per event kind
        self.last_seq = event.seq
        self.clock.apply(event)
        self.earlier.apply(event)
        node, data = event.node_id, event.data
        kind = event.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "run.started":
                self.started_ts = event.ts
            case "node.started":
                if node:
                    self.node_status[node] = "running"
                    for key in [k for k in self.tokens if k == node or k.startswith(f"{node}[")]:
                        del self.tokens[key]  # a new execution (loop, retry, resume) streams afresh
            case "node.completed":
                if node:
                    self.node_status[node] = "succeeded"
            case "node.failed":
                if node:
                    self.node_status[node] = node_failed_status(data)
            case "node.skipped":
                if node:
                    self.node_status[node] = "skipped"
            case "llm.token":
                if node:
                    key = node if "index" not in data else f"{node}[{data['index']}]"
                    mark = (data.get("attempt", 1), data.get("step", 0))
                    if self.token_marks.get(key) != mark:  # a new step or a retry streams afresh
                        self.token_marks[key] = mark
                        self.tokens[key] = ""
                    self.tokens[key] = self.tokens.get(key, "") + str(data.get("delta", ""))
            case "llm.completed":
                self.usage.add(event)
                if data.get("failed") and node:  # a cut-off try: its text is void, the retry streams afresh
                    self.token_marks.pop(node if "index" not in data else f"{node}[{data['index']}]", None)
            case "tool.called":
                self.tool_calls[str(data.get("call_id"))] = {"node": node, "called": event, "result": None}
            case "tool.result":
                entry = self.tool_calls.setdefault(
                    str(data.get("call_id")), {"node": node, "called": None, "result": None}
                )
                entry["result"] = event
            case "memory.recalled" | "memory.saved":
                self.memory.append(event)
            case "log":
                self.logs.append(event)
            case "approval.requested":
                if node:
                    self.approvals[node] = event
                    self.node_status[node] = "waiting"
            case "approval.decided":
                if node:
                    self.approvals.pop(node, None)
                    self.node_status[node] = "running"  # its node.completed (or node.failed) follows
            case "run.waiting":
                pass  # not an end: the run's status says waiting
            case "run.completed" | "run.failed" | "run.cancelled":
                self.terminal = event
                self.finished_ts = event.ts
            case _:
                assert_never(kind)
