"""engine.run_times and engine.attempts: active and wall time, the duration label, the earlier attempts a
resume replaced, all folded from event sequences written out as tables."""

from __future__ import annotations

from typing import Any

import pytest

from engine.attempts import earlier_attempts
from engine.events import Event
from engine.run_times import RunTimes, clock_of, duration, label, run_times

# (case, started, ended, idle_s, running, now, expected active, expected wall)
RUN_TIMES: list[tuple[str, float | None, float | None, float, bool, float, float | None, float | None]] = [
    ("finished, never resumed", 100.0, 110.2, 0.0, False, 999.0, 10.2, 10.2),
    ("resumed after a 140 s pause", 100.0, 250.0, 140.0, False, 999.0, 10.0, 150.0),
    ("running: wall runs to now", 100.0, None, 0.0, True, 103.5, 3.5, 3.5),
    ("running after a resume", 100.0, None, 60.0, True, 165.0, 5.0, 65.0),
    ("running ignores a stale end", 100.0, 101.0, 0.0, True, 104.0, 4.0, 4.0),
    ("never started", None, None, 0.0, False, 999.0, None, None),
    ("not running, no end", 100.0, None, 0.0, False, 999.0, None, None),
    ("clock skew never goes negative", 100.0, 99.0, 0.0, False, 999.0, 0.0, 0.0),
    ("idle larger than wall clips at 0", 100.0, 101.0, 5.0, False, 999.0, 0.0, 1.0),
]


@pytest.mark.parametrize(("case", "started", "ended", "idle", "running", "now", "active", "wall"), RUN_TIMES)
def test_run_times(
    case: str, started: float | None, ended: float | None, idle: float, running: bool, now: float,
    active: float | None, wall: float | None,
) -> None:  # fmt: skip
    times = run_times(started, ended, idle, running=running, now=now)
    assert times.active_s == pytest.approx(active) and times.wall_s == pytest.approx(wall), case


DURATIONS = [
    (None, "—"),
    (0.0, "0 ms"),
    (0.615, "615 ms"),
    (9.7, "9.7 s"),
    (119.94, "119.9 s"),
    (150.0, "2 min 30 s"),
    (3900.0, "1 h 05 min"),
]


@pytest.mark.parametrize(("seconds", "shown"), DURATIONS)
def test_duration(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


LABELS = [
    (RunTimes(10.2, 150.0), "active 10.2 s · wall 2 min 30 s"),
    (RunTimes(0.23, 0.23), "active 230 ms · wall 230 ms"),
    (RunTimes(None, None), "active — · wall —"),
]


@pytest.mark.parametrize(("times", "shown"), LABELS)
def test_label(times: RunTimes, shown: str) -> None:
    assert label(times) == shown


def events(*rows: tuple[Any, ...]) -> list[Event]:
    """Events from (ts, type, node, data) rows, numbered from 1."""
    return [Event(i, "r", ts, kind, node, data) for i, (ts, kind, node, data) in enumerate(rows, start=1)]


RESUMED = events(
    (100.0, "run.started", None, {}),
    (100.1, "node.started", "a", {"execution": 0}),
    (101.0, "node.completed", "a", {"output": 1, "duration_ms": 900.0}),
    (101.1, "node.started", "b", {"execution": 0}),
    (102.0, "node.failed", "b", {"error": "boom: the tool broke", "input": {"args": {"x": 1}}}),
    (102.1, "run.failed", None, {"error": "boom", "node_id": "b"}),
    (242.1, "log", None, {"level": "info", "message": "run resumed", "resumed": True, "paused_at": 102.1}),
    (242.2, "node.started", "b", {"execution": 0, "restarted": True}),
    (243.0, "node.completed", "b", {"output": 2, "duration_ms": 800.0}),
    (243.1, "run.completed", None, {"result": 2}),
)
# an older log: no paused_at, so the gap runs from the event before the marker; a crash, so no terminal event
CRASHED_LEGACY = events(
    (100.0, "run.started", None, {}),
    (100.5, "node.started", "a", {"execution": 0}),
    (130.5, "log", None, {"level": "info", "message": "run resumed", "resumed": True}),
    (130.6, "node.started", "a", {"execution": 0, "restarted": True}),
    (131.5, "node.completed", "a", {"output": 1, "duration_ms": 900.0}),
    (132.0, "run.completed", None, {"result": 1}),
)
TWICE = events(
    (10.0, "run.started", None, {}),
    (10.5, "node.started", "a", {"execution": 0}),
    (11.0, "node.failed", "a", {"error": "first"}),
    (11.0, "run.failed", None, {"error": "first", "node_id": "a"}),
    (21.0, "log", None, {"level": "info", "message": "run resumed", "resumed": True, "paused_at": 11.0}),
    (21.5, "node.started", "a", {"execution": 0, "restarted": True}),
    (22.0, "node.failed", "a", {"error": "second"}),
    (22.0, "run.failed", None, {"error": "second", "node_id": "a"}),
    (52.0, "log", None, {"level": "info", "message": "run resumed", "resumed": True, "paused_at": 22.0}),
    (52.5, "node.started", "a", {"execution": 0, "restarted": True}),
)
NEVER_RESUMED = events(
    (5.0, "run.started", None, {}),
    (5.5, "node.started", "a", {"execution": 0}),
    (6.0, "node.failed", "a", {"error": "no"}),
    (6.5, "run.failed", None, {"error": "no", "node_id": "a"}),
)

# (case, events, running, now, active, wall, resumes)
CLOCKS = [
    ("failed, resumed, completed", RESUMED, False, 999.0, 3.1, 143.1, 1),
    ("crashed, legacy marker", CRASHED_LEGACY, False, 999.0, 2.0, 32.0, 1),
    ("resumed twice, running", TWICE, True, 53.0, 3.0, 43.0, 2),
    ("failed once, not resumed", NEVER_RESUMED, False, 999.0, 1.5, 1.5, 0),
    ("interrupted: ends at its last event", NEVER_RESUMED[:3], False, 999.0, 1.0, 1.0, 0),
]


@pytest.mark.parametrize(("case", "log", "running", "now", "active", "wall", "resumes"), CLOCKS)
def test_clock_folds_periods(
    case: str, log: list[Event], running: bool, now: float, active: float, wall: float, resumes: int
) -> None:
    clock = clock_of(log)
    times = clock.times(running=running, now=now)
    assert (times.active_s, times.wall_s) == (pytest.approx(active), pytest.approx(wall)), case
    assert clock.resumes == resumes


def test_clock_folds_incrementally_the_same() -> None:
    whole = clock_of(RESUMED).times(running=False)
    from engine.run_times import RunClock

    clock = RunClock()
    for event in RESUMED:
        clock.apply(event)
        clock.times(running=True, now=event.ts)  # read between events, as the live page does
    assert clock.times(running=False) == whole


def test_created_at_stands_in_for_a_start_not_seen_yet() -> None:
    clock = clock_of([])
    assert clock.times(running=True, created_at=10.0, now=12.0) == RunTimes(2.0, 2.0)


# (case, events, [(node, execution, status, period, error)])
ATTEMPTS = [
    ("the failed try a resume replaced", RESUMED, [("b", 0, "failed", 1, "boom: the tool broke")]),
    ("a try cut off by a crash", CRASHED_LEGACY, [("a", 0, "running", 1, None)]),
    ("two resumes: two earlier tries", TWICE, [("a", 0, "failed", 1, "first"), ("a", 0, "failed", 2, "second")]),
    ("no resume: nothing earlier", NEVER_RESUMED, []),
]


@pytest.mark.parametrize(("case", "log", "expected"), ATTEMPTS)
def test_earlier_attempts(case: str, log: list[Event], expected: list[tuple[Any, ...]]) -> None:
    found = earlier_attempts(log)
    assert [(a.node_id, a.execution, a.status, a.period, a.error) for a in found] == expected, case


def test_an_earlier_attempt_keeps_its_input_times_and_shown_status() -> None:
    (failed,) = earlier_attempts(RESUMED)
    assert failed.input == {"args": {"x": 1}} and failed.started_seq == 4
    assert failed.duration_ms == pytest.approx(900.0) and failed.shown_status == "failed"
    (cut,) = earlier_attempts(CRASHED_LEGACY)
    assert cut.shown_status == "interrupted" and cut.duration_ms is None
