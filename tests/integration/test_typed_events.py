"""Typed events and one status vocabulary, checked on real runs.

Every event a run emits (each shipped example, a failing and retried node, a tool
error, a rerun from a node, a test of one node) validates against its kind's
TypedDict (pydantic, strict, no unknown keys); every status stored (SQLite and
PostgreSQL) or folded for the pages is a word of engine/statuses.py, and the
store and the Run page say the same word for the same node; migration
0005_statuses rewrites old rows and is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, text

from engine import load_workflow, run_workflow
from engine.events import EVENT_TYPES, PAYLOAD_TYPES, Event, EventType
from engine.llm.offline_model import OfflineChatModel
from engine.runtime import Runtime
from engine.statuses import NODE_STATUSES, RUN_STATUSES
from engine.store.db import MIGRATIONS, migrate
from engine.store.tables import MetaRow
from ui.status import COLOURS, RUN_BADGES, RunView

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAIT_S = 120.0
ADAPTERS: dict[EventType, TypeAdapter[Any]] = {kind: TypeAdapter(payload) for kind, payload in PAYLOAD_TYPES.items()}


def check_payloads(events: Iterable[Event]) -> set[str]:
    """Validate each event's data against its kind's payload type; returns the kinds seen."""
    seen: set[str] = set()
    for event in events:
        payload = PAYLOAD_TYPES[event.type]
        known = payload.__required_keys__ | payload.__optional_keys__
        unknown = set(event.data) - known
        assert not unknown, f"{event.type} carries keys its payload type does not declare: {sorted(unknown)}"
        try:
            ADAPTERS[event.type].validate_python(dict(event.data), strict=True)
        except ValidationError as exc:
            raise AssertionError(f"{event.type} #{event.seq} of node {event.node_id}: {exc}") from None
        seen.add(event.type)
    return seen


def test_every_kind_has_a_payload_type() -> None:
    assert set(PAYLOAD_TYPES) == EVENT_TYPES


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("node.completed", {"output": 1, "attempts": 1}),  # no duration_ms
        ("llm.token", {"delta": 3, "step": 0, "attempt": 1}),  # delta not text
        ("node.started", {"iteration": 0, "execution": 0, "surprise": True}),  # an undeclared key
        ("log", {"level": "loud", "message": "x"}),  # not a level
    ],
)
def test_a_wrong_payload_is_caught(kind: EventType, data: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        check_payloads([Event(1, "r", 0.0, kind, "n", data)])


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
async def test_every_event_of_each_example_matches_its_payload_type(path: Path) -> None:
    workflow = load_workflow(path)
    result = await run_workflow(workflow)
    if any(node.type == "approval" for node in workflow.nodes):  # it waits for a person's decision
        assert result.status == "waiting", result.error
        assert {"approval.requested", "run.waiting"} <= check_payloads(result.events)
        return
    assert result.status == "completed", result.error
    assert {"run.started", "node.started", "node.completed", "run.completed"} <= check_payloads(result.events)


def _failing_doc() -> dict[str, Any]:
    """A tool node whose call fails; its retry budget stays unspent (a calculator error is not retryable)."""
    return {
        "format": "workflow/v1",
        "name": "typed-failing",
        "nodes": [
            {"id": "start", "type": "input"},
            {
                "id": "calc",
                "type": "tool",
                "config": {"tool": "calculator", "args": {"expression": "1 / 0"}},
                "retry": {"attempts": 2, "backoff_s": 0.01},
            },
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.calc.output }}"}},
        ],
        "edges": [{"source": "start", "target": "calc"}, {"source": "calc", "target": "out"}],
    }


def _branch_doc() -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "typed-branch",
        "inputs": {"n": {"type": "integer", "default": 2}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "double", "type": "transform", "config": {"expression": "inputs.n * 2"}},
            {"id": "check", "type": "condition", "config": {"expression": "nodes.double.output > 3"}},
            {"id": "big", "type": "transform", "config": {"expression": "'big'"}},
            {"id": "small", "type": "transform", "config": {"expression": "'small'"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.double.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "double"},
            {"source": "double", "target": "check"},
            {"source": "check", "target": "big", "when": "true"},
            {"source": "check", "target": "small", "when": "false"},
            {"source": "big", "target": "out"},
        ],
    }


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    rt = Runtime(database_url=store_url, llm=OfflineChatModel())
    try:
        yield rt
    finally:
        rt.shutdown()


def _finish(rt: Runtime, run_id: str) -> None:
    info = rt.wait(run_id, timeout=WAIT_S)
    assert info.finished, f"run {run_id} still {info.status}"
    rt.store.flush()


def test_stored_events_and_statuses_speak_one_vocabulary(runtime: Runtime) -> None:
    """A failing run, a branching run and its rerun: payloads typed, statuses from the one vocabulary,
    and the Run page's fold says for each node what the store's row says."""
    failed = runtime.submit(_failing_doc(), {})
    branched = runtime.submit(_branch_doc(), {"n": 2})
    _finish(runtime, failed)
    _finish(runtime, branched)
    rerun = runtime.rerun(branched, "check")
    _finish(runtime, rerun)

    seen: set[str] = set()
    for run_id in (failed, branched, rerun):
        events = runtime.store.events(run_id)
        seen |= check_payloads(events)
        row = runtime.store.get_run(run_id)
        assert row is not None and row.status in RUN_STATUSES
        rows = runtime.store.node_executions(run_id)
        assert {r.status for r in rows} <= set(NODE_STATUSES) - {"pending"}
        view = RunView()
        view.apply(events)
        assert set(view.node_status.values()) <= set(NODE_STATUSES)
        latest = {r.node_id: r.status for r in sorted(rows, key=lambda r: r.started_seq)}
        assert view.node_status == latest, "the store and the Run page name a node's status differently"
    assert {"node.failed", "node.skipped", "tool.result", "log", "run.failed"} <= seen
    failed_rows = {r.node_id: r for r in runtime.store.node_executions(failed)}
    assert failed_rows["calc"].status == "failed" and failed_rows["calc"].attempts == 1  # would fail again
    assert failed_rows["start"].status == "succeeded"
    assert runtime.store.get_run(failed).status == "failed"  # type: ignore[union-attr]
    rerun_events = runtime.store.events(rerun)
    assert rerun_events[0].data["forked_from"]["node"] == "check"
    assert any(e.data.get("reused") for e in rerun_events if e.type == "node.completed")


def test_a_test_of_one_node_emits_typed_events(runtime: Runtime) -> None:
    result = runtime.test_node(_branch_doc(), "double", {"inputs": {"n": 5}})
    assert result.status == "completed" and result.output == 10
    assert {"node.started", "node.completed"} <= check_payloads(result.events)


def test_the_pages_colour_and_badge_exactly_the_vocabulary() -> None:
    # "reused" is how the graph draws a succeeded node a fork took from its source run, not a status
    assert set(COLOURS) == set(NODE_STATUSES) | {"reused"}
    assert set(RUN_BADGES) == set(RUN_STATUSES)


def test_migration_0005_rewrites_old_node_rows_and_is_idempotent(runtime: Runtime) -> None:
    run_id = runtime.submit(_branch_doc(), {"n": 2})
    _finish(runtime, run_id)
    engine = runtime.store.engine
    with engine.begin() as conn:  # as a database written before the vocabulary was settled has them
        old = "UPDATE node_executions SET status = 'completed' WHERE status = 'succeeded' AND run_id = :run"
        conn.execute(text(old), {"run": run_id})
    before = {r.node_id: r.status for r in runtime.store.node_executions(run_id)}
    assert before["double"] == "completed" and before["small"] == "skipped"
    step = dict(MIGRATIONS)["0005_statuses"]
    for _ in range(2):  # idempotent: a second pass changes nothing
        step(engine)
        after = {r.node_id: r.status for r in runtime.store.node_executions(run_id)}
        assert after == {**before, **{n: "succeeded" for n, s in before.items() if s == "completed"}}
    assert migrate(engine) == []  # recorded once, never applied again
    with engine.connect() as conn:
        keys = {key for (key,) in conn.execute(select(MetaRow.key))}  # type: ignore[call-overload]
    assert "migration:0005_statuses" in keys
