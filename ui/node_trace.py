"""Every execution of every node of a run, folded from its events (no Streamlit: unit-tested).

The node panel (``ui.node_panel``) shows, for one node, each time it ran: loop iterations,
retries (a ``log`` warning per failed attempt), restarts after a resume (a new
``node.started`` with ``restarted``), executions a fork reused, skips. Events are the
record: a resumed run keeps its failed attempt in the log even where the node's stored
row was replaced, so the panel reads events, folded incrementally like ``ui.status.RunView``.
Map items are parts of one execution (their events carry ``index``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.events import Event


@dataclass
class Execution:
    """One execution of one node."""

    execution: int | None  # the engine's count of this node's executions (restarts reuse the number)
    iteration: int = 0
    status: str = "running"  # ui.status vocabulary plus "reused" ("waiting": an approval asks a person)
    started_ts: float | None = None
    finished_ts: float | None = None
    duration_ms: float | None = None
    attempts: int = 0
    input: Any = None
    output: Any = None
    has_output: bool = False
    error: str | None = None
    restarted: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    models: list[str] = field(default_factory=list)
    tool_calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # call id -> {"called", "result"} data
    memory: list[Event] = field(default_factory=list)
    logs: list[Event] = field(default_factory=list)
    streamed: dict[str, str] = field(default_factory=dict)  # "" or "item N" -> text of the latest step

    @property
    def finished(self) -> bool:
        return self.status not in ("running", "waiting")


@dataclass
class RunTrace:
    """Per node, its executions in order."""

    nodes: dict[str, list[Execution]] = field(default_factory=dict)
    last_seq: int = 0

    def executions(self, node_id: str) -> list[Execution]:
        return self.nodes.get(node_id, [])

    def reused(self) -> set[str]:
        """Nodes whose latest execution a fork reused."""
        return {n for n, runs in self.nodes.items() if runs and runs[-1].status == "reused"}

    def apply(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.seq > self.last_seq:
                self.last_seq = event.seq
                if event.node_id:
                    self._apply(event)

    def _current(self, node: str) -> Execution:
        runs = self.nodes.setdefault(node, [])
        if not runs:  # an event of a node whose start was not seen: still shown
            runs.append(Execution(execution=None))
        return runs[-1]

    def _apply(self, event: Event) -> None:  # noqa: C901 - one branch per event kind
        node, data = str(event.node_id), dict(event.data or {})
        if event.type == "node.started":
            run = Execution(
                execution=data.get("execution"),
                iteration=int(data.get("iteration") or 0),
                started_ts=event.ts,
                restarted=bool(data.get("restarted")),
            )
            self.nodes.setdefault(node, []).append(run)
            return
        run = self._current(node)
        if event.type == "node.completed":
            run.status = "reused" if data.get("reused") else "succeeded"
            run.output, run.has_output = data.get("output"), True
            self._close(run, event, data)
        elif event.type == "node.failed":
            run.status = "cancelled" if data.get("cancelled") else "failed"
            run.error = str(data.get("error") or "failed")
            if data.get("last_error"):
                run.error += f" (last error: {data['last_error']})"
            self._close(run, event, data)
        elif event.type == "node.skipped":
            if run.finished or run.started_ts is not None:
                run = Execution(execution=None)
                self.nodes[node].append(run)
            run.status, run.finished_ts = "skipped", event.ts
        elif event.type == "llm.completed":
            run.prompt_tokens += int(data.get("prompt_tokens") or 0)
            run.completion_tokens += int(data.get("completion_tokens") or 0)
            run.estimated = run.estimated or bool(data.get("estimated"))
            model = str(data.get("model") or "")
            if model and model not in run.models:
                run.models.append(model)
        elif event.type == "llm.token":
            where = f"item {data['index']}" if "index" in data else ""
            mark = (data.get("attempt", 1), data.get("step", 0))
            key = f"{where}#mark"
            if run.streamed.get(key) != repr(mark):
                run.streamed[key] = repr(mark)
                run.streamed[where] = ""
            run.streamed[where] = run.streamed.get(where, "") + str(data.get("delta", ""))
        elif event.type == "tool.called":
            run.tool_calls[str(data.get("call_id"))] = {"called": data, "result": None, "ts": event.ts}
        elif event.type == "tool.result":
            blank = {"called": None, "result": None, "ts": event.ts}
            entry = run.tool_calls.setdefault(str(data.get("call_id")), blank)
            entry["result"] = data
        elif event.type == "approval.requested":  # what the person is shown is its input until decided
            run.status = "waiting"
            run.input = {key: data.get(key) for key in ("message", "fields", "reads") if key in data}
        elif event.type == "approval.decided":
            run.status = "running"  # its node.completed (or node.failed) follows at once
        elif event.type in ("memory.recalled", "memory.saved"):
            run.memory.append(event)
        elif event.type == "log":
            run.logs.append(event)

    @staticmethod
    def _close(run: Execution, event: Event, data: dict[str, Any]) -> None:
        run.finished_ts = event.ts
        run.duration_ms = data.get("duration_ms")
        if run.duration_ms is None and run.started_ts is not None:
            run.duration_ms = round((event.ts - run.started_ts) * 1000.0, 3)
        run.attempts = int(data.get("attempts") or 0)
        if "input" in data:
            run.input = data["input"]


def streams(run: Execution) -> dict[str, str]:
    """The streamed model text of an execution, per map item ("" for the node itself)."""
    return {k: v for k, v in run.streamed.items() if not k.endswith("#mark")}
