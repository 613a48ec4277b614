"""Run (live): one run as it happens — the graph coloured by node status, progress,
the agents' streamed tokens, tool calls, memory reads/writes, the log, cancel, the result.

The live part is a fragment that reruns every half second while the run is
running and reads only the events it has not seen (``runtime.events_since``),
folding them into a ``RunView`` kept in the session per run id. When the run
finishes the fragment asks for one full rerun, which redraws it without a timer.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine.runtime import RunInfo
from ui import approval_panel, node_panel
from ui.canvas import roomy_page
from ui.nav import RUN_ID, RUN_LINKED, open_in_history
from ui.run_parts import (
    badge,
    folded_view,
    node_progress,
    render_earlier_attempts,
    render_log,
    render_memory,
    render_outcome,
    render_streams,
    render_tokens,
    render_tool_calls,
    run_document,
    times_label,
    view_times,
    when,
)
from ui.runtime import get_runtime
from ui.text import md_escape

VIEWS = "run_views"  # run id -> RunView (folded events)
DOCS = "run_docs"  # run id -> the workflow document it runs
PICK = "run_pick"  # the run selector's widget key
LIVE_EVERY_S = 0.5
STREAMS_SHOWN = 4  # model outputs drawn live: the running ones, then the latest (History has all)

runtime = get_runtime()


def _cancel(run_id: str) -> None:
    if runtime.cancel(run_id):
        st.toast("Cancelling the run…", icon=":material/stop_circle:")


def _picked() -> None:
    """A run picked in the selector is the one shown; the selector coming back empty changes nothing (the
    page goes on showing its run, and the selector shows it again)."""
    picked = st.session_state[PICK]
    if picked is not None:
        st.session_state[RUN_ID] = picked


def _run_label(run_id: str, names: dict[str, str]) -> str:
    return names.get(run_id) or f"{run_id[:8]}"


def from_link() -> None:
    """``?run=<id>`` in the address (a shared link or a reload) opens that run, once; and again whenever the
    page has no run while the address names one (the session lost it: the address is what the person sees)."""
    wanted = st.query_params.get("run")
    if wanted and (wanted != st.session_state.get(RUN_LINKED) or not st.session_state.get(RUN_ID)):
        st.session_state[RUN_LINKED] = wanted
        if runtime.status(wanted) is not None:
            st.session_state[RUN_ID] = wanted


def choose_run() -> str | None:
    """The run to show: the one another page sent us to, or one picked from recent runs."""
    from_link()
    current = st.session_state.get(RUN_ID)
    recent = runtime.reader.runs(limit=30)
    # no status in the label: the select box keeps the label it showed when picked, and the badge below is live
    names = {r.run_id: f"{r.workflow_name} · {when(r.created_at)} · {r.run_id[:8]}" for r in recent}
    options = [r.run_id for r in recent]
    if current and current not in names:
        info = runtime.status(current)
        if info is not None:
            options.insert(0, current)
            names[current] = f"{info.workflow_name} · {when(info.created_at)} · {current[:8]}"
    if not options:
        st.info("No runs yet. Start one from **Home** (a template's *Run* button) or from the **Builder**.")
        st.stop()
    if current in options:  # set on every run: the box is sent the run shown, whatever the browser's copy says
        st.session_state[PICK] = current
    st.selectbox(
        "Run",
        options,
        key=PICK,
        index=None,
        placeholder="Choose a run to watch",
        required=True,  # no clear button: the page keeps showing its run whatever the box says
        format_func=lambda rid: _run_label(rid, names),
        on_change=_picked,
        label_visibility="collapsed",
    )
    chosen = st.session_state.get(RUN_ID) if st.session_state.get(RUN_ID) in options else None
    if chosen is not None and st.query_params.get("run") != chosen:
        st.query_params["run"] = st.session_state[RUN_LINKED] = chosen
    elif chosen is None and "run" in st.query_params:
        del st.query_params["run"]
    return chosen


def document_for(run_id: str, info: RunInfo) -> dict[str, Any] | None:
    docs: dict[str, Any] = st.session_state.setdefault(DOCS, {})
    if docs.get(run_id) is None:
        docs[run_id] = run_document(runtime, run_id, info)
    return docs[run_id]


def live(run_id: str, doc: dict[str, Any] | None, ticking: bool) -> None:
    """Everything that changes while the run runs (the fragment's body)."""
    info = runtime.status(run_id)  # before the events: a finished status means every event is in
    if info is None:
        st.info("This run no longer exists.")
        return
    view = folded_view(runtime, run_id, state_key=VIEWS)
    if ticking and info.finished:
        st.rerun()  # one full rerun redraws the page without the timer
    node_ids = [n["id"] for n in doc.get("nodes", [])] if doc else list(view.node_status)
    labels = {n["id"]: n.get("label") or n["id"] for n in doc.get("nodes", [])} if doc else {}
    fraction, progress = node_progress(view, node_ids, completed=info.status == "completed")

    top = st.columns([1.1, 3.6, 1.8, 1.3], vertical_alignment="center")
    top[0].markdown(badge(info.status))
    top[1].progress(fraction, text=progress)
    top[2].markdown(f":material/timer: {times_label(view_times(view, info))}")
    top[3].button(
        "Cancel run",
        key="run_cancel",
        icon=":material/stop_circle:",
        disabled=info.finished and info.status != "waiting",
        on_click=_cancel,
        args=(run_id,),
        width="stretch",
    )

    with st.container():  # one slot for the approval and earlier attempts, or none: the panel below keeps its place
        approval_panel.decided_note(run_id)
        if info.status == "waiting":  # a person decides here; the run goes on from the approval node
            approval_panel.render(runtime, run_id)
        render_earlier_attempts(view)
    if doc:  # the graph takes the page's full width, the picked node's panel under it; the model output follows
        node_panel.graph_and_panel(runtime, run_id, doc, info, page="run", in_address=True)
    else:
        st.warning("The workflow document of this run is not in the store, so its graph cannot be drawn.")
    st.markdown("**Model output**")
    with st.container(height=300, border=False):
        render_streams(view, labels, limit=STREAMS_SHOWN)

    render_tokens(view, info)
    result, calls, memory, log, inputs = st.tabs(["Result", "Tool calls", "Memory", "Log", "Inputs"])
    with result:
        render_outcome(info)
    with calls:
        render_tool_calls(view)
    with memory:
        render_memory(view)
    with log:
        render_log(view)
    with inputs:
        st.json(info.inputs, expanded=True)


roomy_page()
st.title("Run")
run_id = choose_run()
if run_id is None:
    st.info("Choose a run above to watch it.")
    st.stop()
info = runtime.status(run_id)
if info is None:
    st.session_state.pop(RUN_ID, None)
    st.info("That run no longer exists (it may have been deleted). Choose another one.")
    st.stop()

head, to_history = st.columns([5, 1], vertical_alignment="bottom")
head.subheader(md_escape(info.workflow_name))
head.caption(f"Run `{run_id}` · started {when(info.created_at)}")
with st.container():  # one slot for a rerun's note or none, so switching runs redraws the node panel in place
    node_panel.fork_note(info)
if to_history.button("Open in History", key="run_to_history", icon=":material/history:", disabled=not info.finished):
    open_in_history(run_id)

ticking = not info.finished  # running, or queued for a worker (queue mode)
st.fragment(run_every=LIVE_EVERY_S if ticking else None)(live)(run_id, document_for(run_id, info), ticking)
