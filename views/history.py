"""History: every run, filtered by workflow, status and date; one run's detail
(a Gantt chart of its node executions, per-node inputs and outputs, tool calls,
tokens), resume, compare with another run of the same workflow, delete.

The run shown and the node picked on its graph live in the address
(``/history?run=ID&node=NODE``), as on the Run page: a link or a reload opens the same panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.attempts import Attempt
from engine.errors import EngineError
from engine.evals.runner import evaluator_for
from engine.reader import NodeExecutionRecord, RunRecord
from engine.runtime import RESUMABLE, RunInfo
from engine.statuses import RUN_STATUSES
from ui import node_panel
from ui.history_parts import (
    compare_frame,
    entry_label,
    gantt_chart,
    gantt_frame,
    in_dates,
    last_by_node,
    node_entries,
    run_matches,
    runs_frame,
    shown_executions,
)
from ui.nav import HISTORY_FOCUS as FOCUS
from ui.nav import HISTORY_LINKED as LINKED
from ui.nav import RUN_ID, watch_run
from ui.run_parts import (
    badge,
    error_block,
    folded_view,
    forget_view,
    render_earlier_attempts,
    render_log,
    render_memory,
    render_outcome,
    render_tokens,
    render_tool_calls,
    times_label,
    value_block,
    when,
)
from ui.runtime import get_runtime
from ui.text import md_escape

WORKFLOW, STATUS, DATES = "history_workflow", "history_status", "history_dates"
PICK, TABLE, TABLE_IDS = "history_run", "history_table", "history_table_ids"
CONFIRM = "history_confirm_delete"  # the run id awaiting delete confirmation
COMPARE = "history_compare"
VIEWS = "history_views"
STATUSES = list(RUN_STATUSES)
MAX_RUNS, MAX_EXECUTIONS = 500, 200

runtime = get_runtime()
reader = runtime.reader


def from_link() -> None:
    """``?run=<id>`` in the address (a shared link or a reload) opens that run, once per value."""
    wanted = st.query_params.get("run")
    if wanted and wanted != st.session_state.get(LINKED):
        st.session_state[LINKED] = st.session_state[FOCUS] = wanted


def to_link(chosen: str) -> None:
    """The address follows the run shown; a node picked on another run's graph leaves it."""
    if st.query_params.get("run") == chosen:
        return
    if "run" in st.query_params and node_panel.NODE_PARAM in st.query_params:
        del st.query_params[node_panel.NODE_PARAM]
    st.query_params["run"] = st.session_state[LINKED] = chosen


def take_focus() -> None:
    """A run sent here by another page: clear the filters so it shows, and select it."""
    focus = st.session_state.pop(FOCUS, None)
    if focus:
        for key in (WORKFLOW, STATUS, DATES):  # widgets come back with their defaults: no filter
            st.session_state.pop(key, None)
        st.session_state[PICK] = focus


def run_label(run: RunRecord) -> str:
    return f"{run.status} · {when(run.created_at)} · v{run.workflow_version} · {run.run_id[:8]}"


def filtered_runs() -> tuple[list[RunRecord], Callable[[RunRecord], bool]]:
    """The filters, the (newest ``MAX_RUNS``) runs that pass them, and the test a run passes them by."""
    workflows = {w.id: w.name for w in reader.workflows(include_archived=True)}
    cols = st.columns([2, 1.3, 1.7])
    workflow_id = cols[0].selectbox(
        "Workflow",
        list(workflows),
        key=WORKFLOW,
        index=None,
        placeholder="All workflows",
        format_func=lambda i: workflows.get(i, i),
    )
    status = cols[1].selectbox("Status", STATUSES, key=STATUS, index=None, placeholder="Any status")
    dates = cols[2].date_input("Started between", value=(), key=DATES, format="YYYY-MM-DD")
    days = list(dates) if isinstance(dates, (tuple, list)) else [dates]
    runs = reader.runs(limit=MAX_RUNS, status=status, workflow_id=workflow_id)
    return in_dates(runs, days), lambda run: run_matches(run, status=status, workflow_id=workflow_id, dates=days)


def with_picked(runs: list[RunRecord], matches: Callable[[RunRecord], bool]) -> list[RunRecord]:
    """The listed runs, plus the picked run (e.g. sent from the Memory page) when it passes the filters
    but is older than the ``MAX_RUNS`` listed; a picked run that is gone is said so, and the newest shows."""
    picked = st.session_state.get(PICK)
    if not picked or any(r.run_id == picked for r in runs):
        return runs
    run = reader.run(picked)
    if run is None:
        st.warning(
            f"Run {md_escape(picked)} was not found: it may have been deleted."
            + (" Showing the newest run instead." if runs else "")
        )
        st.session_state.pop(PICK, None)
        return runs
    return [*runs, run] if matches(run) else runs  # a run the filters leave out: the newest shows, as asked


def _table_selected() -> None:
    rows = st.session_state[TABLE].selection.rows
    ids = st.session_state.get(TABLE_IDS, [])
    if rows and rows[0] < len(ids):
        st.session_state[PICK] = ids[rows[0]]
        st.session_state.pop(CONFIRM, None)


def runs_table(runs: list[RunRecord]) -> str:
    """The table and the run picker; returns the chosen run id."""
    ids = [r.run_id for r in runs]
    st.session_state[TABLE_IDS] = ids
    st.dataframe(
        runs_frame(runs, reader.run_times(runs), evaluator_for(runtime).rows_of_runs(ids)),
        key=TABLE,
        on_select=_table_selected,
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(runs), 300),
        column_config={"started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss")},
    )
    if st.session_state.get(PICK) not in ids:
        st.session_state[PICK] = ids[0]
    labels = {r.run_id: f"{r.workflow_name} · {run_label(r)}" for r in runs}  # (a select box shows no icons)
    return st.selectbox(
        "Run",
        ids,
        key=PICK,
        format_func=lambda i: labels.get(i, i),
        on_change=lambda: st.session_state.pop(CONFIRM, None),
    )


def actions(run: RunRecord, info: RunInfo) -> None:
    cols = st.columns(4)
    live = info.status == "running"
    if cols[0].button(
        "Watch live" if live else "Open in Run page",
        key="history_watch",
        icon=":material/play_circle:",
        width="stretch",
    ):
        watch_run(run.run_id)
    if cols[1].button(
        "Resume",
        key="history_resume",
        icon=":material/replay:",
        disabled=info.status not in RESUMABLE,
        width="stretch",
        help="Continue an interrupted or failed run from its last finished nodes",
    ):
        try:
            runtime.resume(run.run_id)
        except EngineError as exc:
            error_block("Could not resume this run.", exc)
        else:
            forget_view(run.run_id, VIEWS, "run_views")
            watch_run(run.run_id)
    if cols[2].button("Delete…", key="history_delete", icon=":material/delete:", disabled=live, width="stretch"):
        st.session_state[CONFIRM] = run.run_id
    if st.session_state.get(CONFIRM) == run.run_id:
        confirm_delete(run)


def confirm_delete(run: RunRecord) -> None:
    with st.container(border=True):
        st.warning(
            f"Delete run `{run.run_id[:8]}` of **{md_escape(run.workflow_name)}** with its events and node records? "
            "This cannot be undone."
        )
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", key="history_delete_yes", type="primary", width="stretch"):
            deleted = runtime.delete_run(run.run_id)
            st.session_state.pop(CONFIRM, None)
            forget_view(run.run_id, VIEWS, "run_views")
            if st.session_state.get(RUN_ID) == run.run_id:
                st.session_state.pop(RUN_ID, None)
            st.session_state.pop(PICK, None)
            st.toast("Run deleted." if deleted else "The run could not be deleted (it is running or already gone).")
            st.rerun()
        if no.button("Keep it", key="history_delete_no", width="stretch"):
            st.session_state.pop(CONFIRM, None)
            st.rerun()


def summary(run: RunRecord, info: RunInfo, executions: list[NodeExecutionRecord], view: Any) -> None:
    st.markdown(
        f"{badge(info.status)} **{md_escape(run.workflow_name)}** · version {run.workflow_version} · `{run.run_id}`"
    )
    finished = f" · finished {when(info.finished_at)}" if info.finished_at else ""
    took = reader.run_times([run])[run.run_id]  # as the runs table above shows it
    st.caption(f"Started {when(run.created_at)}{finished} · :material/timer: {times_label(took)}")
    cols = st.columns(4)
    cols[0].metric("Earlier attempts", len(view.earlier.attempts), help="Node executions a resume ran again")
    cols[1].metric("Node executions", len(executions))
    cols[2].metric("Tool calls", len(view.tool_calls))
    cols[3].metric("Resumed", f"{run.resumed}×")
    if info.status == "running":
        st.info("This run is still running; **Watch live** follows it as it happens.")
    render_earlier_attempts(view)


def timeline(run: RunRecord, executions: list[NodeExecutionRecord], earlier: list[Attempt]) -> None:
    frame, unit = gantt_frame(executions, run_start=run.started_at or run.created_at, earlier=earlier)
    if frame.empty:
        st.caption("No node has run yet.")
        return
    st.altair_chart(gantt_chart(frame, unit), width="stretch")


def nodes(executions: list[NodeExecutionRecord], earlier: list[Attempt]) -> None:
    entries = node_entries(executions, earlier)
    if not entries:
        st.caption("No node executions recorded.")
        return
    if len(entries) > MAX_EXECUTIONS:
        st.caption(f"Showing the first {MAX_EXECUTIONS} of {len(entries)} executions.")
    for row in entries[:MAX_EXECUTIONS]:
        with st.expander(entry_label(row)):
            left, right = st.columns(2)
            with left:
                st.markdown("**Input**")
                if row.input is not None:
                    value_block(row.input)
                else:
                    st.caption(node_panel.missing_input("reused" if getattr(row, "reused", False) else row.status))
            with right:
                st.markdown("**Output**")
                value_block(getattr(row, "output", None))
            if row.error:
                what = "This earlier attempt" if isinstance(row, Attempt) else "This execution"
                error_block(f"{what} failed." if row.status == "failed" else f"{what} was {row.status}.", row.error)


def compare(run: RunRecord, info: RunInfo, executions: list[NodeExecutionRecord]) -> None:
    others = [r for r in reader.runs(limit=100, workflow_id=run.workflow_id) if r.run_id != run.run_id]
    if not others:
        st.caption("No other run of this workflow to compare with.")
        return
    labels = {r.run_id: run_label(r) for r in others}
    other_id = st.selectbox(
        "Compare with",
        list(labels),
        key=COMPARE,
        index=None,
        placeholder="Choose another run of this workflow",
        format_func=lambda i: labels.get(i, i),
    )
    if other_id is None:
        return
    other = reader.run(other_id)
    other_info = runtime.status(other_id) if other is not None else None
    if other is None or other_info is None:
        st.warning(f"Run {md_escape(other_id[:8])} was not found: it may have been deleted. Choose another run.")
        return
    other_execs = reader.node_executions(other.run_id)
    for col, r, i in zip(st.columns(2), (run, other), (info, other_info), strict=True):
        with col:
            st.markdown(f"**{'A' if r is run else 'B'}** {badge(i.status)} `{r.run_id[:8]}` · {when(r.created_at)}")
            st.markdown("Inputs")
            st.json(dict(r.inputs), expanded=True)
            st.markdown("Result")
            render_outcome(i)
    st.markdown("**Per node** (A = this run, B = the other)")
    st.dataframe(compare_frame(executions, other_execs), hide_index=True, width="stretch")
    a_last, b_last = last_by_node(executions), last_by_node(other_execs)
    for node in dict.fromkeys([*a_last, *b_last]):
        with st.expander(f"Outputs of {md_escape(node)}"):
            for col, rows in zip(st.columns(2), (a_last, b_last), strict=True):
                with col:
                    if node in rows:
                        value_block(rows[node].output)
                    else:
                        st.caption("(did not run)")


def detail(run_id: str) -> None:
    run = reader.run(run_id)
    info = runtime.status(run_id)
    if run is None or info is None:
        st.info("That run is not in the store (yet).")
        return
    view = folded_view(runtime, run_id, state_key=VIEWS)
    executions = shown_executions(run, reader.node_executions(run_id))
    summary(run, info, executions, view)
    actions(run, info)
    render_tokens(view, info)
    node_panel.for_run(runtime, run_id, info, page="history", in_address=True)
    tabs = st.tabs(["Timeline", "Nodes", "Tool calls", "Result & inputs", "Memory", "Log", "Compare"])
    with tabs[0]:
        timeline(run, executions, view.earlier.attempts)
    with tabs[1]:
        nodes(executions, view.earlier.attempts)
    with tabs[2]:
        render_tool_calls(view)
    with tabs[3]:
        render_outcome(info)
        st.markdown("**Inputs**")
        st.json(dict(run.inputs), expanded=True)
    with tabs[4]:
        render_memory(view)
    with tabs[5]:
        render_log(view)
    with tabs[6]:
        compare(run, info, executions)


st.title("History")
from_link()
take_focus()
runs = with_picked(*filtered_runs())
if not runs:
    st.info(
        "No runs match these filters."
        if reader.count_runs()
        else "No runs yet. Start one from **Home** or the **Builder**."
    )
    st.stop()
chosen = runs_table(runs)
to_link(chosen)
st.divider()
detail(chosen)
