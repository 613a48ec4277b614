"""The node panel's record of every execution (ui.node_trace), folded from a run's events."""

from __future__ import annotations

from typing import Any

from engine.events import Event
from ui.node_trace import RunTrace, streams
from ui.run_parts import node_counts, progress_text
from ui.status import RunView


class Log:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, type_: str, node: str | None, **data: Any) -> None:
        seq = len(self.events) + 1
        self.events.append(Event(seq, "r1", 1000.0 + seq, type_, node, data))  # type: ignore[arg-type]


def test_iterations_retries_and_a_restart_after_resume_are_separate_executions() -> None:
    log = Log()
    log.add("run.started", None)
    log.add("node.started", "a", iteration=0, execution=0)
    log.add("llm.token", "a", delta="Hel", step=0, attempt=1)
    log.add("llm.token", "a", delta="lo", step=0, attempt=1)
    log.add("llm.completed", "a", model="m1", prompt_tokens=5, completion_tokens=2)
    log.add("log", "a", level="warning", message="attempt 1 of 2 failed: boom; retrying in 1 s")
    log.add("node.completed", "a", output="Hello", duration_ms=12.5, attempts=2, input={"prompt": "hi"})
    log.add("node.started", "a", iteration=1, execution=1)
    log.add("node.failed", "a", error="timed out", attempts=1, input={"prompt": "again"})
    log.add("node.started", "a", iteration=1, execution=1, restarted=True)
    trace = RunTrace()
    trace.apply(log.events[:5])
    assert trace.executions("a")[0].status == "running"
    assert streams(trace.executions("a")[0]) == {"": "Hello"}
    trace.apply(log.events)  # already folded events are ignored
    first, second, third = trace.executions("a")
    assert (first.status, first.output, first.attempts, first.input) == ("succeeded", "Hello", 2, {"prompt": "hi"})
    assert first.prompt_tokens == 5 and first.completion_tokens == 2 and first.models == ["m1"]
    assert len(first.logs) == 1 and first.duration_ms == 12.5
    assert (second.status, second.error, second.iteration, second.input) == (
        "failed",
        "timed out",
        1,
        {"prompt": "again"},
    )
    assert second.duration_ms == 1000.0  # no duration in the event: from its start to its end
    assert third.restarted and third.status == "running"


def test_reused_skipped_tool_calls_and_memory_reads() -> None:
    log = Log()
    log.add("node.started", "a", iteration=0, execution=0, reused=True)
    log.add("node.completed", "a", output={"k": 1}, duration_ms=0.0, attempts=0, reused=True)
    log.add("node.skipped", "b")
    log.add("node.started", "c", iteration=0, execution=0)
    log.add("memory.recalled", "c", agent_id="ag", query="q", hits=[])
    log.add("tool.called", "c", tool="calc", args={"x": 1}, call_id="t1")
    log.add("tool.result", "c", call_id="t1", duration_ms=3.0, error="bad input")
    log.add("node.failed", "c", error="cancelled", cancelled=True, attempts=1)
    trace = RunTrace()
    trace.apply(log.events)
    assert trace.executions("a")[0].status == "reused" and trace.reused() == {"a"}
    assert trace.executions("b")[0].status == "skipped"
    c = trace.executions("c")[0]
    assert c.status == "cancelled" and c.tool_calls["t1"]["result"]["error"] == "bad input"
    assert [e.type for e in c.memory] == ["memory.recalled"]


def test_an_approval_waits_shows_its_request_then_its_decision() -> None:
    log = Log()
    log.add("node.started", "ok", iteration=0, execution=0)
    log.add("approval.requested", "ok", message="Send it?", fields={"body": "hi"}, options=["approve", "reject"],
            execution=0, iteration=0, reads={"inputs.text": "hi"})  # fmt: skip
    log.add("run.waiting", None)
    trace, view = RunTrace(), RunView()
    trace.apply(log.events)
    view.apply(log.events)
    [asked] = trace.executions("ok")
    assert asked.status == "waiting" and not asked.finished
    assert asked.input == {"message": "Send it?", "fields": {"body": "hi"}, "reads": {"inputs.text": "hi"}}
    assert view.node_status["ok"] == "waiting" and "ok" in view.approvals
    assert progress_text(node_counts(view, ["in", "ok"]), 2) == "0 finished of 2 · 1 waiting"
    record = {"message": "Send it?", "fields": {"body": "hi"}, "reads": {}, "when": "approve", "taken": ["out"]}
    log.add("approval.decided", "ok", decision="approve", fields={}, comment="", decided_by="ann",
            decided_at=1009.0, execution=0)  # fmt: skip
    trace.apply(log.events)
    view.apply(log.events)
    assert trace.executions("ok")[0].status == "running" and view.node_status["ok"] == "running"
    log.add("node.completed", "ok", output={"decision": "approve"}, duration_ms=7000.0, attempts=1, input=record)
    trace.apply(log.events)
    view.apply(log.events)
    [decided] = trace.executions("ok")
    assert (decided.status, decided.input, decided.duration_ms) == ("succeeded", record, 7000.0)
    assert view.node_status["ok"] == "succeeded" and "ok" not in view.approvals
