"""Click a node of a run's graph, see everything it did: the node panel of the Run and History pages.

:func:`graph_and_panel` draws the run's graph (``ui.graph_view``) and, under it, the panel of
the node picked on it: every execution of the node (loop iterations, map items, retries,
restarts after a resume, reused by a fork) with its status, its input as rendered, its
output, its error in red, duration, tokens, tool calls, memory reads and log lines, and
"Rerun from here" (``ui.rerun_button``) once the run is finished. On the Run and History
pages the pick lives in the address (``?run=ID&node=NODE``), so a link or a reload opens the
same panel; on the Run page it is drawn inside the page's live fragment, so it follows a running node.

The panel reads the run's events through :func:`_read_events` only (one place to switch
when the runtime grows a read API), folded per run into a :class:`ui.node_trace.RunTrace`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pandas as pd
import streamlit as st

from engine.events import Event
from engine.runtime import RunInfo, Runtime
from ui import graph_view
from ui.icons import material
from ui.nav import RUN_ID, RUN_LINKED, RUN_PAGE
from ui.node_trace import Execution, RunTrace, streams
from ui.rerun_button import rerun_form
from ui.run_parts import NODE_ICONS, code, compact_json, duration, error_block, run_document, text_block, value_block
from ui.text import clip, md_escape

TRACES = "node_panel_traces"  # session: run id -> RunTrace
DOCS = "node_panel_docs"  # session: run id -> the workflow document the run ran
PICKED = "node_panel_picked"  # session: page key -> (run id, node id), for pages without it in the address
NODE_PARAM = "node"
MAX_SHOWN = 30  # executions drawn (the latest); a long loop says how many it left out
_KEEP = 6
ICONS = {**NODE_ICONS, "reused": ":violet[:material/recycling:]"}


def _read_events(runtime: Runtime, run_id: str, after: int) -> list[Event]:
    """The run's events after ``after`` (the panel's only read of the run's record)."""
    return runtime.events_since(run_id, after)


def traced(runtime: Runtime, run_id: str) -> RunTrace:
    """The run's executions with every event so far folded in (only new events are read)."""
    traces: OrderedDict[str, RunTrace] = st.session_state.setdefault(TRACES, OrderedDict())
    trace = traces.get(run_id)
    if trace is None:
        trace = traces[run_id] = RunTrace()
        while len(traces) > _KEEP:
            traces.popitem(last=False)
    traces.move_to_end(run_id)
    trace.apply(_read_events(runtime, run_id, trace.last_seq))
    return trace


def statuses_of(trace: RunTrace, node_ids: list[str]) -> dict[str, str]:
    """Each node's colour on the graph: its latest execution's status ("reused" for a fork's reused nodes)."""
    out: dict[str, str] = {}
    for node_id in node_ids:
        runs = trace.executions(node_id)
        out[node_id] = runs[-1].status if runs else "pending"
    return out


def picked(page: str, run_id: str, *, in_address: bool) -> str | None:
    if in_address:
        return st.query_params.get(NODE_PARAM) or None
    saved = st.session_state.get(PICKED, {}).get(page)
    return saved[1] if saved and saved[0] == run_id else None


def _pick(page: str, run_id: str, node_id: str | None, in_address: bool) -> None:
    if in_address:
        if node_id:
            st.query_params[NODE_PARAM] = node_id
        elif NODE_PARAM in st.query_params:
            del st.query_params[NODE_PARAM]
    else:
        st.session_state.setdefault(PICKED, {})[page] = (run_id, node_id)


def _clicked(page: str, run_id: str, in_address: bool) -> None:
    node_id = graph_view.clicked(f"{page}_graph")
    if node_id:
        _pick(page, run_id, node_id, in_address)


def graph_and_panel(
    runtime: Runtime, run_id: str, doc: dict[str, Any], info: RunInfo, *, page: str, in_address: bool
) -> None:
    """The run's graph, clickable, and the picked node's panel under it."""
    trace = traced(runtime, run_id)
    node_ids = [n["id"] for n in doc.get("nodes", [])]
    selected = picked(page, run_id, in_address=in_address)
    if selected not in node_ids:
        selected = None
    graph_view.run_graph(
        doc,
        statuses_of(trace, node_ids),
        key=f"{page}_graph",
        selected=selected,
        on_click=_clicked,
        args=(page, run_id, in_address),
    )
    if selected is None:
        st.caption(":material/touch_app: Click a node to see its inputs, outputs and errors, and to rerun from it.")
        return
    node = next(n for n in doc.get("nodes", []) if n["id"] == selected)
    panel(runtime, run_id, node, trace.executions(selected), info, page=page, in_address=in_address, trace=trace)


def for_run(runtime: Runtime, run_id: str, info: RunInfo, *, page: str, in_address: bool = False) -> None:
    """The graph and node panel of a run on a page that has not read its document (History)."""
    docs: dict[str, Any] = st.session_state.setdefault(DOCS, {})
    if docs.get(run_id) is None:
        if len(docs) >= _KEEP:
            docs.clear()
        docs[run_id] = run_document(runtime, run_id, info)
    if docs[run_id]:
        graph_and_panel(runtime, run_id, docs[run_id], info, page=page, in_address=in_address)


def _heading(node: dict[str, Any], runs: list[Execution]) -> str:
    label = md_escape(node.get("label") or node["id"])
    status = runs[-1].status if runs else "pending"
    return (
        f"{material(node.get('type'))} **{label}** · {code(node.get('type', '?'))} · node {code(node['id'])} · "
        f"{ICONS.get(status, ICONS['pending'])} {status}"
    )


def panel(
    runtime: Runtime,
    run_id: str,
    node: dict[str, Any],
    runs: list[Execution],
    info: RunInfo,
    *,
    page: str,
    in_address: bool,
    trace: RunTrace,
) -> None:
    """One node's panel: its executions, newest expanded, and Rerun from here."""
    with st.container(border=True, key=f"{page}_node_panel"):
        head, close = st.columns([8, 1.2], vertical_alignment="center")
        head.markdown(_heading(node, runs))
        close.button(
            "Close",
            key=f"{page}_node_close",
            icon=":material/close:",
            help="Close the node's panel",
            on_click=_pick,
            args=(page, run_id, None, in_address),
            width="stretch",
        )
        if not runs:
            st.caption("This node has not run (yet)." if info.status == "running" else "This node did not run.")
        else:
            count = len(runs)
            st.caption(
                f"{count} execution{'s' if count != 1 else ''}"
                + (f" · showing the latest {MAX_SHOWN}" if count > MAX_SHOWN else "")
            )
            first = max(0, count - MAX_SHOWN)
            for number, run in enumerate(runs[first:], start=first + 1):
                execution(run, number, latest=number == count)
        rerun_form(runtime, run_id, node, info, trace=trace, key=f"{page}_rerun")


def _title(run: Execution, number: int) -> str:
    parts = [f"{ICONS.get(run.status, ICONS['pending'])} Execution {number}"]
    if run.iteration:
        parts.append(f"iteration {run.iteration}")
    parts.append(run.status)
    if run.restarted:
        parts.append("restarted after a resume")
    if run.attempts > 1:
        parts.append(f"{run.attempts} attempts")
    if run.duration_ms is not None and run.status != "reused":
        parts.append(duration(run.duration_ms / 1000.0))
    tokens = run.prompt_tokens + run.completion_tokens
    if tokens:
        parts.append(f"{'~' if run.estimated else ''}{tokens} tokens")
    return " · ".join(parts)


def missing_input(status: str) -> str:
    """Why an execution shows no input (every node type records one once it has rendered it)."""
    if status == "running":
        return "(shown when it finishes)"
    if status == "reused":
        return "(not rendered: reused from the source run, whose panel shows it)"
    return "(none: it stopped before its input was rendered)"


def execution(run: Execution, number: int, *, latest: bool) -> None:
    """One execution: input and output side by side, its error, then what it did."""
    with st.expander(_title(run, number), expanded=latest):
        if run.status == "reused":
            st.caption(":material/recycling: Reused from the source run: nothing ran, the output is the source's.")
        if run.status == "skipped":
            st.caption("Skipped: no branch led here.")
            return
        left, right = st.columns(2)
        with left:
            st.markdown("**Input** (as rendered)")
            if run.input is not None:
                value_block(run.input)
            else:
                st.caption(missing_input(run.status))
        with right:
            st.markdown("**Output**")
            if run.has_output:
                value_block(run.output)
            else:
                st.caption("(running…)" if run.status == "running" else "(none)")
        if run.error:
            error_block(f"Execution {number} {run.status}.", run.error)
        text = {k: v for k, v in streams(run).items() if v}
        if text and (run.status == "running" or not run.has_output):
            st.markdown("**Model output so far**")
            for where, chunk in text.items():
                if where:
                    st.caption(md_escape(where))
                text_block(chunk, limit=6000)
        if run.prompt_tokens or run.completion_tokens:
            st.caption(
                f"Tokens: {run.prompt_tokens} prompt + {run.completion_tokens} completion"
                + (" (estimated)" if run.estimated else "")
                + (f" · model {', '.join(code(m) for m in run.models)}" if run.models else "")
            )
        _tool_calls(run)
        _memory(run)
        for line in run.logs:
            level = str(line.data.get("level", "info"))
            message = clip(line.data.get("message", ""), 500)
            (st.warning if level in ("warning", "error") else st.caption)(md_escape(f"{level}: {message}"))


def _tool_calls(run: Execution) -> None:
    if not run.tool_calls:
        return
    st.markdown("**Tool calls**")
    rows = []
    for call_id, entry in run.tool_calls.items():
        called, result = entry.get("called") or {}, entry.get("result")
        if result is None:
            outcome, state = "…", "running"
        elif "error" in result:
            outcome, state = f"Error: {result['error']}", "error"
        else:
            outcome, state = compact_json(result.get("result"), 400), "ok"
        rows.append(
            {
                "tool": str(called.get("tool") or (result or {}).get("tool") or ""),
                "args": compact_json(called.get("args"), 300),
                "result / error": clip(outcome, 400),
                "ms": (result or {}).get("duration_ms"),
                "status": state,
                "call": call_id,
            }
        )
    frame = pd.DataFrame(rows)
    red = "color: #d33; font-weight: 600"
    st.dataframe(
        frame.style.apply(lambda r: [red if r.get("status") == "error" else "" for _ in r], axis=1),
        hide_index=True,
        width="stretch",
    )


def _memory(run: Execution) -> None:
    reads = [e for e in run.memory if e.type == "memory.recalled"]
    if not reads:
        return
    st.markdown("**Memory reads**")
    for event in reads:
        hits = event.data.get("hits")
        count = len(hits) if isinstance(hits, list) else hits
        st.caption(f"{md_escape(count)} hit(s) for agent {code(event.data.get('agent_id') or '?')}; the query:")
        text_block(clip(event.data.get("query", ""), 400))
        if isinstance(hits, list) and hits:
            st.json(hits, expanded=1)


def fork_note(info: RunInfo) -> None:
    """A rerun's source: a button to that run with the picked node's panel open (a shareable address)."""
    source = info.forked_from
    if not source or not source.get("run_id"):
        return
    source_id, node = str(source["run_id"]), str(source.get("node") or "")
    label = f"Rerun of run {source_id[:8]} from node {node}" + (
        " (with an edited config)" if source.get("config") is not None else ""
    )
    if st.button(label, key="run_fork_source", icon=":material/call_split:", type="tertiary"):
        st.session_state[RUN_ID] = st.session_state[RUN_LINKED] = source_id
        st.switch_page(RUN_PAGE, query_params={"run": source_id, **({NODE_PARAM: node} if node else {})})
