"""The approval node (issue 19): a run waits for a person, durably, and a decision continues it.

Real parts: a Runtime over a real SQLite store in a temporary folder; no model is needed (transform nodes
draft). Each case is a row: a workflow, the decisions given, and what the run must end with.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import approvals
from engine.errors import DecisionInvalid, NotWaiting, WorkflowInvalid
from engine.runtime import Runtime
from engine.validate import load_workflow

WAIT_S = 30


def approval(node_id: str = "ok", **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "approval",
        "config": {
            "message": "Send {{ nodes.draft.output }}?",
            "fields": {"body": "{{ nodes.draft.output }}"},
            **config,
        },
    }


def gate_doc(**config: Any) -> dict[str, Any]:
    """input -> draft -> ok (approval) -> sent (approve) | dropped (reject)."""
    return {
        "format": "workflow/v1",
        "name": "gate",
        "inputs": {"text": {"type": "string", "default": "hello"}},
        "nodes": [
            {"id": "in", "type": "input"},
            {"id": "draft", "type": "transform", "config": {"template": "draft of {{ inputs.text }}"}},
            approval(**config),
            {
                "id": "sent",
                "type": "output",
                "config": {"value": "{{ nodes.ok.output.fields.body }}|{{ nodes.ok.output.comment }}"},
            },
            {"id": "dropped", "type": "output", "config": {"value": "dropped: {{ nodes.ok.output.comment }}"}},
        ],
        "edges": [
            {"source": "in", "target": "draft"},
            {"source": "draft", "target": "ok"},
            {"source": "ok", "target": "sent", "when": "approve"},
            {"source": "ok", "target": "dropped", "when": "reject"},
        ],
    }


def parallel_doc() -> dict[str, Any]:
    """Two approvals in parallel branches, joined by one output."""
    return {
        "format": "workflow/v1",
        "name": "parallel",
        "nodes": [
            {"id": "in", "type": "input"},
            {"id": "draft", "type": "transform", "config": {"template": "d"}},
            approval("a"),
            approval("b"),
            {
                "id": "join",
                "type": "output",
                "config": {"value": "{{ nodes.a.output.decision }}+{{ nodes.b.output.decision }}"},
            },
        ],
        "edges": [
            {"source": "in", "target": "draft"},
            {"source": "draft", "target": "a"},
            {"source": "draft", "target": "b"},
            {"source": "a", "target": "join", "when": "default"},
            {"source": "b", "target": "join", "when": "default"},
        ],
    }


def loop_doc() -> dict[str, Any]:
    """draft -> ok; reject goes back to draft (which uses the comment), approve leaves to the output."""
    return {
        "format": "workflow/v1",
        "name": "loop",
        "settings": {"max_iterations": 3},
        "nodes": [
            {"id": "in", "type": "input"},
            {
                "id": "draft",
                "type": "transform",
                "config": {
                    "template": "v{{ iteration }}{% if iteration %} after {{ nodes.ok.output.comment }}{% endif %}"
                },
            },
            approval(),
            {"id": "sent", "type": "output", "config": {"value": "{{ nodes.ok.output.fields.body }}"}},
        ],
        "edges": [
            {"source": "in", "target": "draft"},
            {"source": "draft", "target": "ok"},
            {"source": "ok", "target": "draft", "when": "reject"},
            {"source": "ok", "target": "sent", "when": "approve"},
        ],
    }


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with Runtime(data_dir=str(tmp_path / "data"), approval_sweep_s=3600) as rt:
        yield rt


def wait_status(rt: Runtime, run_id: str, status: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        info = rt.wait(run_id, timeout=1)
        if info.status == status:
            return info
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} is {rt.status(run_id).status}, not {status}")  # type: ignore[union-attr]


def starts(rt: Runtime, run_id: str) -> Counter[str]:
    """How many times each node started (reused or not: a resume that re-ran a node would add one)."""
    return Counter(str(e.node_id) for e in rt.reader.events(run_id) if e.type == "node.started")


# --- routing and fields: (decision, fields, comment) -> result -----------------------------------

ROUTING = [
    ("approve", None, "", {"sent": "draft of hello|"}),
    ("approve", {"body": "edited by a person"}, "ok", {"sent": "edited by a person|ok"}),
    ("reject", None, "too long", {"dropped": "dropped: too long"}),
]


@pytest.mark.parametrize(("decision", "fields", "comment", "result"), ROUTING)
def test_a_decision_routes_the_run_and_edited_fields_reach_downstream(
    runtime: Runtime, decision: str, fields: dict[str, Any] | None, comment: str, result: dict[str, Any]
) -> None:
    run_id = runtime.submit(gate_doc())
    wait_status(runtime, run_id, "waiting")
    assert runtime.reader.run(run_id).status == "waiting"  # type: ignore[union-attr]
    [request] = runtime.waiting_approvals(run_id)
    assert request["message"] == "Send draft of hello?" and request["options"] == ["approve", "reject"]
    assert request["fields"] == {"body": "draft of hello"}
    assert runtime.running() == []  # nothing is held while it waits
    runtime.decide(run_id, "ok", decision, fields=fields, comment=comment, decided_by="ann")
    info = wait_status(runtime, run_id, "completed")
    assert info.result == result
    assert starts(runtime, run_id) == Counter({"in": 1, "draft": 1, "ok": 1, next(iter(result)): 1})
    decided = [e for e in runtime.reader.events(run_id) if e.type == "approval.decided"]
    assert len(decided) == 1 and decided[0].data["decided_by"] == "ann" and decided[0].data["decision"] == decision
    with pytest.raises(NotWaiting):  # a second decision is refused
        runtime.decide(run_id, "ok", decision)


@pytest.mark.parametrize(
    ("decision", "fields", "message"),
    [("maybe", None, "not an option"), ("approve", {"subject": "x"}, "unknown field")],
)
def test_a_bad_decision_is_refused_and_the_run_keeps_waiting(
    runtime: Runtime, decision: str, fields: dict[str, Any] | None, message: str
) -> None:
    run_id = runtime.submit(gate_doc())
    wait_status(runtime, run_id, "waiting")
    with pytest.raises(DecisionInvalid, match=message):
        runtime.decide(run_id, "ok", decision, fields=fields)
    with pytest.raises(NotWaiting, match="not waiting for a decision"):
        runtime.decide(run_id, "draft", "approve")
    assert runtime.status(run_id).status == "waiting"  # type: ignore[union-attr]


# --- timeouts: each on_timeout -------------------------------------------------------------------

TIMEOUTS = [
    ("approve", "completed", {"sent": "draft of hello|"}),
    ("reject", "completed", {"dropped": "dropped: "}),
    ("fail", "failed", None),
]


@pytest.mark.parametrize(("on_timeout", "status", "result"), TIMEOUTS)
def test_a_due_timeout_applies_on_timeout(
    runtime: Runtime, on_timeout: str, status: str, result: dict[str, Any] | None
) -> None:
    run_id = runtime.submit(gate_doc(timeout_s=60, on_timeout=on_timeout))
    wait_status(runtime, run_id, "waiting")
    assert runtime.apply_due_timeouts(now=time.time()) == 0  # not due yet: measured from the request
    assert runtime.apply_due_timeouts(now=time.time() + 61) == 1
    info = wait_status(runtime, run_id, status)
    assert info.result == result
    decided = [e for e in runtime.reader.events(run_id) if e.type == "approval.decided"]
    assert decided[0].data["decided_by"] == "timeout" and decided[0].data["timed_out"] is True
    if status == "failed":
        assert info.error_node == "ok" and "on_timeout: fail" in (info.error or "")


def test_the_sweep_reads_every_waiting_run_page_by_page_and_only_their_approval_events(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep pages through all waiting runs (a fixed first page used to leave the rest waiting past their
    timeout) and reads only approval events of each, in one query per page, not every run's whole log."""
    monkeypatch.setattr(approvals, "SWEEP_PAGE", 2)
    later = [runtime.submit(gate_doc(timeout_s=60, on_timeout="reject")) for _ in range(5)]
    never = runtime.submit(gate_doc())  # no timeout: waits until someone decides
    for run_id in [*later, never]:
        wait_status(runtime, run_id, "waiting")
    runtime.store.flush()
    waiting = sorted([*later, never])
    assert runtime.store.waiting_runs(limit=4) == waiting[:4]
    assert runtime.store.waiting_runs(limit=4, after=waiting[3]) == waiting[4:]
    found = runtime.store.approval_events([never, "no-such-run"])
    assert [e.type for e in found[never]] == ["approval.requested"] and found["no-such-run"] == []
    assert runtime.apply_due_timeouts(now=time.time() + 61) == 5
    for run_id in later:
        assert wait_status(runtime, run_id, "completed").result == {"dropped": "dropped: "}
    assert runtime.status(never).status == "waiting"  # type: ignore[union-attr]


def test_a_timeout_is_honoured_by_a_runtime_started_later(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with Runtime(data_dir=data, approval_sweep_s=3600) as first:
        run_id = first.submit(gate_doc(timeout_s=0.3, on_timeout="reject"))
        wait_status(first, run_id, "waiting")
    time.sleep(0.4)
    with Runtime(data_dir=data, heartbeat_s=0.1, approval_sweep_s=0.1) as second:  # its start sweeps
        info = wait_status(second, run_id, "completed")
        assert info.result == {"dropped": "dropped: "}
        assert starts(second, run_id)["draft"] == 1


# --- parallel approvals, a loop, cancel ---------------------------------------------------------


def test_parallel_approvals_each_wait_for_their_own_decision(runtime: Runtime) -> None:
    run_id = runtime.submit(parallel_doc())
    wait_status(runtime, run_id, "waiting")
    assert [r["node"] for r in runtime.waiting_approvals(run_id)] == ["a", "b"]
    runtime.decide(run_id, "b", "reject")
    wait_status(runtime, run_id, "waiting")
    assert [r["node"] for r in runtime.waiting_approvals(run_id)] == ["a"]
    runtime.decide(run_id, "a", "approve")
    info = wait_status(runtime, run_id, "completed")
    assert info.result == {"join": "approve+reject"}
    assert starts(runtime, run_id) == Counter({"in": 1, "draft": 1, "a": 1, "b": 1, "join": 1})


def test_an_approval_in_a_loop_asks_again_each_iteration(runtime: Runtime) -> None:
    run_id = runtime.submit(loop_doc())
    wait_status(runtime, run_id, "waiting")
    runtime.decide(run_id, "ok", "reject", comment="shorter")
    wait_status(runtime, run_id, "waiting")
    [request] = runtime.waiting_approvals(run_id)
    assert request["execution"] == 1 and request["fields"] == {"body": "v1 after shorter"}
    runtime.decide(run_id, "ok", "approve")
    info = wait_status(runtime, run_id, "completed")
    assert info.result == {"sent": "v1 after shorter"}
    assert starts(runtime, run_id) == Counter({"in": 1, "draft": 2, "ok": 2, "sent": 1})


def test_cancel_of_a_waiting_run_ends_it_cancelled(runtime: Runtime) -> None:
    run_id = runtime.submit(gate_doc())
    wait_status(runtime, run_id, "waiting")
    assert runtime.cancel(run_id) is True
    assert runtime.status(run_id).status == "cancelled"  # type: ignore[union-attr]
    assert runtime.reader.run(run_id).status == "cancelled"  # type: ignore[union-attr]
    with pytest.raises(NotWaiting):
        runtime.decide(run_id, "ok", "approve")
    assert runtime.cancel(run_id) is False


def test_a_decision_from_a_new_runtime_reuses_every_finished_node(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with Runtime(data_dir=data, approval_sweep_s=3600) as first:
        run_id = first.submit(gate_doc())
        wait_status(first, run_id, "waiting")
    with Runtime(data_dir=data, approval_sweep_s=3600) as second:
        assert second.interrupted_at_start == []  # a waiting run is not an interrupted one
        second.decide(run_id, "ok", "approve")
        assert wait_status(second, run_id, "completed").result == {"sent": "draft of hello|"}
        assert starts(second, run_id) == Counter({"in": 1, "draft": 1, "ok": 1, "sent": 1})


# --- validation ----------------------------------------------------------------------------------

INVALID = [
    ({"options": ["yes", "no"]}, "when 'approve' is not an option of 'ok'"),
    ({"timeout_s": 5, "on_timeout": "later"}, "on_timeout must be one of the options"),
    ({"timeout_s": 5}, "give both or neither"),
]


@pytest.mark.parametrize(("config", "message"), INVALID)
def test_validation_checks_options_and_timeouts(config: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowInvalid, match=message):
        load_workflow(gate_doc(**config))


def test_an_edge_leaving_an_approval_needs_when() -> None:
    doc = gate_doc()
    doc["edges"][2].pop("when")
    with pytest.raises(WorkflowInvalid, match='needs "when"'):
        load_workflow(doc)


# --- the example ---------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "approve_draft.json"


def test_the_example_revises_on_reject_and_sends_on_approve(runtime: Runtime) -> None:
    run_id = runtime.submit(load_workflow(EXAMPLE))  # offline: the offline model drafts
    wait_status(runtime, run_id, "waiting")
    [first] = runtime.waiting_approvals(run_id)
    assert first["node"] == "review" and first["fields"]["reply"]
    runtime.decide(run_id, "review", "reject", comment="mention the replacement ships today")
    wait_status(runtime, run_id, "waiting")
    [second] = runtime.waiting_approvals(run_id)
    assert second["execution"] == 1
    prompts = [
        " ".join(e.data["input"]["messages"])
        for e in runtime.reader.events(run_id)
        if e.type == "node.completed" and e.node_id == "draft"
    ]
    assert "mention the replacement ships today" in prompts[1]
    runtime.decide(run_id, "review", "approve", fields={"reply": "Sorry! A new lid ships today."}, decided_by="ann")
    info = wait_status(runtime, run_id, "completed")
    assert info.result == {"sent": {"reply": "Sorry! A new lid ships today.", "approved_by": "ann"}}
