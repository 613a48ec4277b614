"""History's drawings: the runs table, the Gantt chart of node executions, run comparison."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any

import altair as alt
import pandas as pd

from engine.reader import NodeExecutionRecord as NodeExecutionRow, RunRecord as RunRow
from ui.run_parts import compact_json
from ui.status import COLOURS


# node_executions say "completed"; the UI says "succeeded" everywhere
NODE_STATUS = {"completed": "succeeded"}
STATUS_ORDER = ["succeeded", "running", "failed", "cancelled", "skipped", "pending"]


def node_status(row: NodeExecutionRow) -> str:
    return NODE_STATUS.get(row.status, row.status)


def runs_frame(runs: Sequence[RunRow]) -> pd.DataFrame:
    """The runs table: one row per run, newest first."""
    rows = []
    for r in runs:
        end = r.finished_at or (time.time() if r.status == "running" else None)
        rows.append(
            {
                "status": r.status,
                "workflow": f"{r.workflow_name} (v{r.workflow_version})",
                "started": dt.datetime.fromtimestamp(r.created_at),
                "duration (s)": round(end - (r.started_at or r.created_at), 2) if end else None,  # as the detail
                "tokens": token_count(r.prompt_tokens + r.completion_tokens, bool(r.tokens_estimated), r.failed_tokens),
                "run": r.run_id,
            }
        )
    return pd.DataFrame(rows, columns=["status", "workflow", "started", "duration (s)", "tokens", "run"])


def token_count(total: int, estimated: bool, failed: int = 0) -> str:
    """A run's token total as the runs table shows it: ``"1,234"``, ``"~1,234 (estimated)"``, and the share
    of failed tries apart: ``"1,234 (200 in failed tries)"``."""
    notes = (["estimated"] if estimated else []) + ([f"{failed:,} in failed tries"] if failed else [])
    return ("~" if estimated else "") + f"{total:,}" + (f" ({', '.join(notes)})" if notes else "")


def in_dates(runs: Iterable[RunRow], dates: Sequence[dt.date]) -> list[RunRow]:
    """Runs started within the (inclusive) date range; no range keeps them all."""
    if not dates:
        return list(runs)
    first, last = dates[0], dates[-1]
    return [r for r in runs if first <= dt.date.fromtimestamp(r.created_at) <= last]


def run_matches(run: RunRow, *, status: str | None, workflow_id: str | None, dates: Sequence[dt.date]) -> bool:
    """Whether ``run`` passes the History filters (``None`` and no dates: no filter)."""
    return (
        (not status or run.status == status)
        and (not workflow_id or run.workflow_id == workflow_id)
        and bool(in_dates([run], dates))
    )


def gantt_frame(rows: Sequence[NodeExecutionRow], *, run_start: float | None) -> tuple[pd.DataFrame, str]:
    """One bar per node execution, from its start to its end, in seconds or ms since the run started."""
    started = [r.started_at for r in rows if r.started_at]
    if not started:
        return pd.DataFrame(), "ms"
    origin = min([run_start, *started]) if run_start else min(started)
    now = time.time()
    ends = [(r.finished_at or (now if r.status == "running" else r.started_at)) for r in rows if r.started_at]
    span = max(ends) - origin
    unit, scale = ("s", 1.0) if span >= 10 else ("ms", 1000.0)
    min_width = max(span * scale * 0.004, 1e-3)  # so sub-millisecond nodes still show a sliver
    data = []
    for r in rows:
        if not r.started_at:
            continue
        end = r.finished_at or (now if r.status == "running" else r.started_at)
        start_x = (r.started_at - origin) * scale
        data.append(
            {
                "node": f"{r.node_id} #{r.execution}" if r.execution else r.node_id,
                "start": round(start_x, 4),
                "end": round(max((end - origin) * scale, start_x + min_width), 4),
                "status": node_status(r),
                "duration_ms": r.duration_ms if r.duration_ms is not None else round((end - r.started_at) * 1000, 3),
                "iteration": r.iteration,
                "attempts": r.attempts,
            }
        )
    return pd.DataFrame(data), unit


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
            y=alt.Y("node:N", sort=order, title=None),
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


def last_by_node(rows: Sequence[NodeExecutionRow]) -> dict[str, NodeExecutionRow]:
    """Each node's last execution (loops run a node several times)."""
    out: dict[str, NodeExecutionRow] = {}
    for r in rows:
        out[r.node_id] = r
    return out


def compare_frame(a: Sequence[NodeExecutionRow], b: Sequence[NodeExecutionRow]) -> pd.DataFrame:
    """Per node: status, executions and total duration in run A and run B, and whether outputs match."""

    def summary(rows: Sequence[NodeExecutionRow]) -> dict[str, dict[str, Any]]:
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
