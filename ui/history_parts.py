"""History's drawings: the runs table, the Gantt chart and list of node executions (with the earlier attempts
a resume replaced), run comparison."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

from engine.attempts import Attempt
from engine.reader import NodeExecutionRecord, RunRecord
from engine.run_times import RunTimes, label
from engine.statuses import NodeStatus
from ui.run_parts import NODE_ICONS, compact_json
from ui.status import COLOURS
from ui.text import md_escape

STATUS_ORDER: list[NodeStatus] = ["succeeded", "running", "waiting", "failed", "cancelled", "skipped", "pending"]


_OPEN = ("running", "waiting")  # an execution in one of these has no end yet


def node_status(row: NodeExecutionRecord) -> NodeStatus:
    return row.status


def shown_executions(run: RunRecord, rows: Sequence[NodeExecutionRecord]) -> list[NodeExecutionRecord]:
    """The run's executions as the pages show them: in a waiting run nothing runs, so an execution the
    store holds as running is an approval whose request is open, shown ``waiting``."""
    if run.status != "waiting":
        return list(rows)
    return [dataclasses.replace(r, status="waiting") if r.status == "running" else r for r in rows]


def runs_frame(
    runs: Sequence[RunRecord], times: Mapping[str, RunTimes], evals: Mapping[str, tuple[str, int]] | None = None
) -> pd.DataFrame:
    """The runs table: one row per run, newest first; ``times``: each run's active and wall time
    (:func:`engine.run_times.times_of_rows`), shown as the detail and the Run page show them; ``evals``: the
    evaluation row each run is (``{run_id: (eval_id, row)}``), shown as ``eval 1a2b3c4d · row 7`` so an
    evaluation's runs are not taken for a person's (blank for those)."""
    rows = []
    for r in runs:
        took = times.get(r.run_id)
        rows.append(
            {
                "status": r.status,
                "workflow": f"{r.workflow_name} (v{r.workflow_version})",
                "started": dt.datetime.fromtimestamp(r.created_at),
                "duration": label(took) if took is not None else "—",
                "tokens": token_count(r.prompt_tokens + r.completion_tokens, bool(r.tokens_estimated), r.failed_tokens),
                "evaluation": _eval_label((evals or {}).get(r.run_id)),
                "run": r.run_id,
            }
        )
    return pd.DataFrame(rows, columns=["status", "workflow", "started", "duration", "tokens", "evaluation", "run"])


def _eval_label(found: tuple[str, int] | None) -> str:
    return "" if found is None else f"eval {found[0][:8]} · row {found[1]}"


def token_count(total: int, estimated: bool, failed: int = 0) -> str:
    """A run's token total as the runs table shows it: ``"1,234"``, ``"~1,234 (estimated)"``, and the share
    of failed tries apart: ``"1,234 (200 in failed tries)"``."""
    notes = (["estimated"] if estimated else []) + ([f"{failed:,} in failed tries"] if failed else [])
    return ("~" if estimated else "") + f"{total:,}" + (f" ({', '.join(notes)})" if notes else "")


def in_dates(runs: Iterable[RunRecord], dates: Sequence[dt.date]) -> list[RunRecord]:
    """Runs started within the (inclusive) date range; no range keeps them all."""
    if not dates:
        return list(runs)
    first, last = dates[0], dates[-1]
    return [r for r in runs if first <= dt.date.fromtimestamp(r.created_at) <= last]


def run_matches(run: RunRecord, *, status: str | None, workflow_id: str | None, dates: Sequence[dt.date]) -> bool:
    """Whether ``run`` passes the History filters (``None`` and no dates: no filter)."""
    return (
        (not status or run.status == status)
        and (not workflow_id or run.workflow_id == workflow_id)
        and bool(in_dates([run], dates))
    )


_Bar = tuple[int, str, float, float | None, str, float | None, int, int]


def _bars(rows: Sequence[NodeExecutionRecord], earlier: Sequence[Attempt]) -> list[_Bar]:
    """(seq, label, start, end, status, duration ms, iteration, attempts) of each execution that began, and of
    each earlier attempt a resume replaced (marked in its label), in the order they began."""
    bars = [
        (
            r.started_seq,
            f"{r.node_id} #{r.execution}" if r.execution else r.node_id,
            r.started_at,
            r.finished_at if r.finished_at is not None else (None if r.status in _OPEN else r.started_at),
            node_status(r),
            r.duration_ms,
            r.iteration,
            r.attempts,
        )
        for r in rows
        if r.started_at
    ]
    for a in earlier:
        name = f"{a.node_id} #{a.execution}" if a.execution else a.node_id
        end = a.finished_at if a.finished_at is not None else a.started_at
        bars.append((a.started_seq, f"{name} · earlier attempt {a.period}", a.started_at, end, a.shown_status,
                     a.duration_ms, a.iteration, 1))  # fmt: skip
    return sorted(bars, key=lambda b: b[0])


def gantt_frame(
    rows: Sequence[NodeExecutionRecord], *, run_start: float | None, earlier: Sequence[Attempt] = ()
) -> tuple[pd.DataFrame, str]:
    """One bar per node execution (and per earlier attempt a resume replaced), from its start to its end,
    in seconds or ms since the run started."""
    bars = _bars(rows, earlier)
    if not bars:
        return pd.DataFrame(), "ms"
    started = [b[2] for b in bars]
    origin = min([run_start, *started]) if run_start else min(started)
    now = time.time()
    ends = [b[3] if b[3] is not None else now for b in bars]
    span = max(ends) - origin
    unit, scale = ("s", 1.0) if span >= 10 else ("ms", 1000.0)
    min_width = max(span * scale * 0.004, 1e-3)  # so sub-millisecond nodes still show a sliver
    data = []
    for (_seq, name, start, _end, status, duration_ms, iteration, attempts), end in zip(bars, ends, strict=True):
        start_x = (start - origin) * scale
        data.append(
            {
                "node": name,
                "start": round(start_x, 4),
                "end": round(max((end - origin) * scale, start_x + min_width), 4),
                "status": status,
                "duration_ms": duration_ms if duration_ms is not None else round((end - start) * 1000, 3),
                "iteration": iteration,
                "attempts": attempts,
            }
        )
    return pd.DataFrame(data), unit


def node_entries(
    rows: Sequence[NodeExecutionRecord], earlier: Sequence[Attempt]
) -> list[NodeExecutionRecord | Attempt]:
    """The Nodes tab's list: every stored execution and every earlier attempt a resume replaced, in the order
    they began (an earlier attempt just before the execution that replaced it)."""
    entries: list[NodeExecutionRecord | Attempt] = [*rows, *earlier]
    return sorted(entries, key=lambda e: e.started_seq)


def entry_label(entry: NodeExecutionRecord | Attempt) -> str:
    """An expander's label: icon, node (escaped), execution, status and duration; earlier attempts marked."""
    if isinstance(entry, Attempt):
        status = entry.shown_status
        mark = f" · earlier attempt (before resume {entry.period})"
    else:
        status, mark = node_status(entry), ""
    took = f" · {entry.duration_ms:.1f} ms" if entry.duration_ms is not None else ""
    icon = NODE_ICONS.get(status, NODE_ICONS["failed" if status == "interrupted" else "pending"])
    return f"{icon} {md_escape(entry.node_id)} · execution {entry.execution}{mark} · {status}{took}"


def gantt_chart(frame: pd.DataFrame, unit: str) -> alt.Chart:
    """A Gantt-style bar chart coloured by status (the Run page's colours)."""
    order = list(dict.fromkeys(frame["node"]))
    statuses = [s for s in STATUS_ORDER if s in set(frame["status"])] + sorted(set(frame["status"]) - set(STATUS_ORDER))
    colours = [COLOURS.get(s, ("#e4e4e7", "#71717a"))[1] for s in statuses]
    return (
        alt.Chart(frame)
        .mark_bar(cornerRadius=3)
        .encode(
            x=alt.X("start:Q", title=f"{'seconds' if unit == 's' else 'milliseconds'} since the run started"),
            x2="end:Q",
            y=alt.Y("node:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
            color=alt.Color("status:N", scale=alt.Scale(domain=statuses, range=colours)),
            tooltip=[
                "node",
                "status",
                alt.Tooltip("duration_ms:Q", title="duration (ms)", format=".3f"),
                "iteration",
                "attempts",
            ],
        )
        .properties(height=alt.Step(28))
    )


def last_by_node(rows: Sequence[NodeExecutionRecord]) -> dict[str, NodeExecutionRecord]:
    """Each node's last execution (loops run a node several times)."""
    out: dict[str, NodeExecutionRecord] = {}
    for r in rows:
        out[r.node_id] = r
    return out


def compare_frame(a: Sequence[NodeExecutionRecord], b: Sequence[NodeExecutionRecord]) -> pd.DataFrame:
    """Per node: status, executions and total duration in run A and run B, and whether outputs match."""

    def summary(rows: Sequence[NodeExecutionRecord]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(r.node_id, {"status": "", "runs": 0, "ms": 0.0, "output": None})
            entry["status"] = node_status(r)
            entry["runs"] += 1
            entry["ms"] += r.duration_ms or 0.0
            entry["output"] = r.output
        return out

    left, right = summary(a), summary(b)
    rows = []
    for node in dict.fromkeys([*left, *right]):
        x, y = left.get(node), right.get(node)
        rows.append(
            {
                "node": node,
                "status A": x["status"] if x else "—",
                "status B": y["status"] if y else "—",
                "ms A": round(x["ms"], 3) if x else None,
                "ms B": round(y["ms"], 3) if y else None,
                "executions A": x["runs"] if x else 0,
                "executions B": y["runs"] if y else 0,
                "same output": (compact_json(x["output"], 10_000) == compact_json(y["output"], 10_000))
                if x and y
                else False,
            }
        )
    return pd.DataFrame(rows)
