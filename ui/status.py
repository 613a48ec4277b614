"""Run and node statuses: how they are derived from events and how they look."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.attempts import EarlierAttempts
from engine.costs import Usage
from engine.events import Event
from engine.run_times import RunClock

# background, border
COLOURS: dict[str, tuple[str, str]] = {
    "pending": ("#ffffff", "#a1a1aa"),
    "running": ("#dbeafe", "#2563eb"),
    "succeeded": ("#dcfce7", "#16a34a"),
    "failed": ("#fee2e2", "#dc2626"),
    "skipped": ("#f4f4f5", "#d4d4d8"),
    "cancelled": ("#fef3c7", "#d97706"),
}
RUN_BADGES: dict[str, str] = {
    "queued": ":gray-badge[queued]",
    "running": ":blue-badge[running]",
    "completed": ":green-badge[completed]",
    "failed": ":red-badge[failed]",
    "cancelled": ":orange-badge[cancelled]",
    "interrupted": ":violet-badge[interrupted]",
}


@dataclass
class RunView:
    """What the Run page shows, folded from a run's events (incrementally)."""

    node_status: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # node -> streamed text of its current step
    token_marks: dict[str, tuple[object, object]] = field(default_factory=dict)  # node -> (attempt, step) streaming
    # (a failed try's llm.completed drops the node's mark: the retry's first delta starts the text afresh)
    tool_calls: dict[str, dict] = field(default_factory=dict)  # call_id -> called + result
    memory: list[Event] = field(default_factory=list)
    logs: list[Event] = field(default_factory=list)
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
        if event.type == "run.started":
            self.started_ts = event.ts
        elif event.type == "node.started" and node:
            self.node_status[node] = "running"
            for key in [k for k in self.tokens if k == node or k.startswith(f"{node}[")]:
                del self.tokens[key]  # a new execution (loop, retry, resume) streams afresh
        elif event.type == "node.completed" and node:
            self.node_status[node] = "succeeded"
        elif event.type == "node.failed" and node:
            self.node_status[node] = "cancelled" if data.get("cancelled") else "failed"
        elif event.type == "node.skipped" and node:
            self.node_status[node] = "skipped"
        elif event.type == "llm.token" and node:
            key = node if "index" not in data else f"{node}[{data['index']}]"
            mark = (data.get("attempt", 1), data.get("step", 0))
            if self.token_marks.get(key) != mark:  # a new step or a retry streams afresh
                self.token_marks[key] = mark
                self.tokens[key] = ""
            self.tokens[key] = self.tokens.get(key, "") + str(data.get("delta", ""))
        elif event.type == "llm.completed":
            self.usage.add(event)
            if data.get("failed") and node:  # a cut-off try: its text is void, the retry streams afresh
                self.token_marks.pop(node if "index" not in data else f"{node}[{data['index']}]", None)
        elif event.type == "tool.called":
            self.tool_calls[str(data.get("call_id"))] = {"node": node, "called": event, "result": None}
        elif event.type == "tool.result":
            entry = self.tool_calls.setdefault(str(data.get("call_id")), {"node": node, "called": None, "result": None})
            entry["result"] = event
        elif event.type in ("memory.recalled", "memory.saved"):
            self.memory.append(event)
        elif event.type == "log":
            self.logs.append(event)
        elif event.terminal:
            self.terminal = event
            self.finished_ts = event.ts
