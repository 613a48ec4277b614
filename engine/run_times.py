"""How long a run took, said one way everywhere: active time and wall time.

A resumed run has idle gaps: between its failure (or the crash that interrupted
it) and the resume that followed, nothing ran. Its *wall* time runs from its
start to its end (or to now while it runs); its *active* time is the sum of its
running periods, i.e. the wall time less those gaps. Every list and detail (the
History table and detail, the Run page, ``python -m engine runs/show``) shows
both, labelled, with :func:`label`, from the same inputs:

* the run's start (its ``run.started`` event, ``runs.started_at``; else when it
  was created),
* its end (its last terminal event, ``runs.finished_at``; an interrupted run,
  which has none, ends at its last event),
* its idle seconds: each resume writes a ``log`` event with ``"resumed": true``
  and ``"paused_at"`` (the time of the last event before the resume); the gap is
  that event's time less ``paused_at`` (older logs without ``paused_at``: less
  the time of the event just before it).

:class:`RunClock` folds these from a run's events (the Run page, live);
:func:`times_of_rows` reads them for many stored runs at once (the lists), in
one small store read the lead can move behind the runtime's read API.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, assert_never

from engine.events import Event


@dataclass(frozen=True, slots=True)
class RunTimes:
    """A run's active and wall seconds (``None``: not known, e.g. it never started)."""

    active_s: float | None
    wall_s: float | None

    @property
    def idle_s(self) -> float | None:
        if self.active_s is None or self.wall_s is None:
            return None
        return max(0.0, self.wall_s - self.active_s)


def run_times(
    started: float | None,
    ended: float | None,
    idle_s: float,
    *,
    running: bool,
    now: float | None = None,
) -> RunTimes:
    """Active and wall time from a run's start, end (``None`` while it runs) and idle seconds.

    A running run's wall time runs to ``now``; a run that is not running and has no end has no times.
    """
    if started is None:
        return RunTimes(None, None)
    end = (time.time() if now is None else now) if running else ended
    if end is None:
        return RunTimes(None, None)
    wall = max(0.0, end - started)
    return RunTimes(max(0.0, wall - max(0.0, idle_s)), wall)


def duration(seconds: float | None) -> str:
    """Seconds as people read them: ``"615 ms"``, ``"9.7 s"``, ``"2 min 30 s"``, ``"1 h 05 min"``; ``"—"`` if
    unknown."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def label(times: RunTimes) -> str:
    """``"active 10.2 s · wall 2 min 30 s"``: the one way a run's duration is shown."""
    return f"active {duration(times.active_s)} · wall {duration(times.wall_s)}"


def is_resume_marker(event: Event) -> bool:
    """The ``log`` event a resume starts with."""
    return event.type == "log" and bool(event.data.get("resumed"))


class RunClock:
    """A run's start, end and idle seconds, folded from its events (in ``seq`` order, incrementally)."""

    __slots__ = ("ended", "idle_s", "last_ts", "resumes", "started")

    def __init__(self) -> None:
        self.started: float | None = None
        self.ended: float | None = None  # the last terminal event's time; None again once resumed
        self.idle_s = 0.0
        self.last_ts: float | None = None
        self.resumes = 0

    def apply(self, event: Event) -> None:
        kind = event.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "run.started":
                if self.started is None:
                    self.started = event.ts
            case "log":
                if is_resume_marker(event):
                    paused = _number(event.data.get("paused_at"))
                    paused = paused if paused is not None else self.last_ts
                    if paused is not None:
                        self.idle_s += max(0.0, event.ts - paused)
                    self.ended = None
                    self.resumes += 1
            case "run.completed" | "run.failed" | "run.cancelled" | "run.waiting":
                self.ended = event.ts  # waiting: its task ended; the time until the decision is idle
            case "approval.requested" | "approval.decided":
                pass
            case "node.started" | "node.completed" | "node.failed" | "node.skipped" | "llm.token" | "llm.completed":
                pass
            case "tool.called" | "tool.result" | "memory.recalled" | "memory.saved":
                pass
            case _:
                assert_never(kind)
        self.last_ts = event.ts

    def times(self, *, running: bool, created_at: float | None = None, now: float | None = None) -> RunTimes:
        """The run's times; ``created_at`` stands in for a start not seen yet. A run that is not running and
        has no terminal event since its last resume (interrupted) ends at its last event."""
        ended = self.ended if self.ended is not None else self.last_ts
        return run_times(self.started or created_at, ended, self.idle_s, running=running, now=now)


def clock_of(events: Iterable[Event]) -> RunClock:
    clock = RunClock()
    for event in events:
        clock.apply(event)
    return clock


class TimedRun(Protocol):
    """What :func:`times_of_rows` needs of a stored run (``engine.store.RunRow`` has it)."""

    # read-only (properties): a frozen record (engine.reader.RunRecord) has them as well as a row
    @property
    def run_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def resumed(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Marks:
    """Per run, what the rows alone do not say: idle seconds, and the last event's time."""

    idle_s: Mapping[str, float]
    last_ts: Mapping[str, float]


def times_of_rows(store: Any, rows: Sequence[TimedRun], *, now: float | None = None) -> dict[str, RunTimes]:
    """Each run's times, by run id, for a list of stored runs (the same figures :class:`RunClock` folds)."""
    marks = _stored_marks(store, rows)
    out: dict[str, RunTimes] = {}
    for row in rows:
        ended = row.finished_at if row.finished_at is not None else marks.last_ts.get(row.run_id)
        out[row.run_id] = run_times(
            row.started_at or row.created_at,
            ended,
            marks.idle_s.get(row.run_id, 0.0),
            running=row.status == "running",
            now=now,
        )
    return out


def _stored_marks(store: Any, rows: Sequence[TimedRun]) -> _Marks:
    """The one store read behind the lists: the resume markers of resumed runs (and, for a marker without
    ``paused_at``, the event before it), and the last event time of runs that ended without a terminal event."""
    from sqlalchemy import func, select, tuple_
    from sqlmodel import Session

    from engine.store.tables import EventRow

    resumed = [r.run_id for r in rows if r.resumed]
    unended = [r.run_id for r in rows if r.finished_at is None and r.status != "running"]
    idle: dict[str, float] = {}
    last: dict[str, float] = {}
    if not resumed and not unended:
        return _Marks(idle, last)
    table = EventRow.__table__  # type: ignore[attr-defined]
    with Session(store.engine) as session:
        legacy: list[tuple[str, int, float]] = []
        if resumed:
            query = select(table.c.run_id, table.c.seq, table.c.ts, table.c.data).where(
                table.c.run_id.in_(resumed), table.c.type == "log"
            )
            for run_id, seq, ts, data in session.execute(query):
                if not isinstance(data, dict) or not data.get("resumed"):
                    continue
                paused = _number(data.get("paused_at"))
                if paused is None:
                    legacy.append((run_id, seq - 1, ts))
                else:
                    idle[run_id] = idle.get(run_id, 0.0) + max(0.0, ts - paused)
        if legacy:
            before = {
                (run_id, seq): ts
                for run_id, seq, ts in session.execute(
                    select(table.c.run_id, table.c.seq, table.c.ts).where(
                        tuple_(table.c.run_id, table.c.seq).in_([(r, s) for r, s, _ in legacy])
                    )
                )
            }
            for run_id, seq, ts in legacy:
                if (run_id, seq) in before:
                    idle[run_id] = idle.get(run_id, 0.0) + max(0.0, ts - before[(run_id, seq)])
        if unended:
            query = (
                select(table.c.run_id, func.max(table.c.ts)).where(table.c.run_id.in_(unended)).group_by(table.c.run_id)
            )
            last = {run_id: ts for run_id, ts in session.execute(query) if ts is not None}
    return _Marks(idle, last)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
