"""What the Run and History pages draw the same way: a run's events folded and rendered.

Everything a run shows comes from its event stream (``runtime.events_since``),
folded into a :class:`ui.status.RunView` kept in ``st.session_state`` per run
id, so each rerun reads only the events it has not seen yet. Model and tool
text is never rendered as Markdown or HTML: it goes to ``st.text``,
``st.code``, ``st.json`` or a dataframe cell, which show it as typed (escaped
Markdown would still turn a bare ``http://`` address into a link). Labels and
names the user wrote go through :func:`ui.text.md_escape`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import pandas as pd
import streamlit as st

from engine.attempts import Attempt
from engine.costs import cost_of, format_usd, prices_from
from engine.run_times import RunTimes, duration, label
from engine.runtime import RunInfo, Runtime
from engine.statuses import FINISHED_NODE, NodeStatus
from engine.timefmt import format_ts
from ui.runtime import get_runtime
from ui.status import RUN_BADGES, RunView
from ui.text import clip, md_escape

# Markdown icons (Material Symbols: they render without an emoji font)
NODE_ICONS: dict[NodeStatus, str] = {
    "pending": ":gray[:material/radio_button_unchecked:]",
    "running": ":blue[:material/pending:]",
    "waiting": ":orange[:material/hourglass_top:]",
    "succeeded": ":green[:material/check_circle:]",
    "failed": ":red[:material/cancel:]",
    "skipped": ":gray[:material/block:]",
    "cancelled": ":orange[:material/do_not_disturb_on:]",
}
OFFLINE_BADGE = ":orange-badge[:material/cloud_off: answered by the offline model]"
_KEEP_VIEWS = 8


# --- folding events -----------------------------------------------------------------------------


def folded_view(runtime: Runtime, run_id: str, *, state_key: str) -> RunView:
    """The run's view with every event so far folded in (only new events are read).

    Args:
        runtime: the dashboard's runtime.
        run_id: the run.
        state_key: the session key holding this page's views (one dict per page).
    """
    views: OrderedDict[str, RunView] = st.session_state.setdefault(state_key, OrderedDict())
    view = views.get(run_id)
    if view is None:
        view = views[run_id] = RunView()
        while len(views) > _KEEP_VIEWS:
            views.popitem(last=False)
    views.move_to_end(run_id)
    view.apply(runtime.events_since(run_id, view.last_seq))
    return view


def forget_view(run_id: str, *state_keys: str) -> None:
    """Drop cached views of a run (after it was resumed or deleted)."""
    for key in state_keys:
        views = st.session_state.get(key)
        if isinstance(views, dict):
            views.pop(run_id, None)


def run_document(runtime: Runtime, run_id: str, info: RunInfo) -> dict[str, Any] | None:
    """The workflow document the run executes (the exact saved version when known)."""
    reader = runtime.reader
    row = reader.run(run_id)
    if row is not None:
        saved = reader.workflow_version(row.workflow_id, row.workflow_version)
    else:  # just submitted: its row is still in the writer's queue; submit saved the workflow first
        found = reader.find_workflow(info.workflow_name)
        saved = reader.workflow_version(found.id) if found is not None else None
    return dict(saved.document) if saved is not None else None


# --- small formatting helpers -----------------------------------------------------------------------


def text_block(text: object, *, limit: int = 20_000) -> None:
    """Model or tool text, shown as typed: no Markdown or HTML parsing, so no links, images or formatting."""
    shown = clip(text, limit)
    if shown:
        st.text(shown)
    else:
        st.caption("(empty)")


def error_block(headline: str, detail: object) -> None:
    """An error: our own headline (Markdown) and the error text as typed (it may quote model output)."""
    st.error(headline)
    st.code(clip(detail, 4000), language=None, wrap_lines=True)


def value_block(value: Any) -> None:
    """A node output or run result: text as escaped text, data in the JSON viewer."""
    if isinstance(value, str):
        text_block(value)
    elif value is None:
        st.caption("(no value)")
    else:
        st.json(value, expanded=2)


def code(text: object) -> str:
    """Text as an inline code span (shown as typed; a backtick inside cannot end it)."""
    return "`" + str(text).replace("`", "ˋ").replace("\n", " ") + "`"


def compact_json(value: Any, limit: int = 400) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, limit)


when = format_ts  # an epoch time as local date and time: the pages' name for engine.timefmt.format_ts


def badge(status: str) -> str:
    return RUN_BADGES.get(status, f":gray-badge[{md_escape(status)}]")


def view_times(view: RunView, info: RunInfo) -> RunTimes:
    """The run's active and wall time from its events (the same figures the History list reads)."""
    return view.clock.times(running=info.status == "running", created_at=info.created_at)


def times_label(times: RunTimes) -> str:
    """``"active 10.2 s · wall 2 min 30 s"``: every page shows a run's duration this way."""
    return label(times)


PROGRESS_ORDER: tuple[NodeStatus, ...] = ("succeeded", "failed", "skipped", "cancelled")


def node_counts(view: RunView, node_ids: list[str]) -> dict[str, int]:
    """How many of the workflow's nodes are in each status now (a node's latest execution counts)."""
    counts: dict[str, int] = {}
    for node in node_ids:
        status = view.node_status.get(node, "pending")
        counts[status] = counts.get(status, 0) + 1
    return counts


def progress_text(counts: dict[str, int], total: int) -> str:
    """``"5 succeeded · 1 failed · 1 skipped of 7"`` (and ``" · 1 running · 1 waiting"`` while some run
    or wait for a person)."""
    parts = [f"{counts[s]} {s}" for s in PROGRESS_ORDER if counts.get(s)]
    text = (" · ".join(parts) if parts else "0 finished") + f" of {total}"
    return text + "".join(f" · {counts[s]} {s}" for s in ("running", "waiting") if counts.get(s))


def node_progress(view: RunView, node_ids: list[str], *, completed: bool) -> tuple[float, str]:
    """The progress bar's fraction (nodes finished, whatever their outcome; 1 for a completed run) and text."""
    counts = node_counts(view, node_ids)
    total = len(node_ids)
    done = sum(counts.get(s, 0) for s in FINISHED_NODE)
    fraction = 1.0 if completed or not total else done / total
    return fraction, progress_text(counts, total)


# --- sections ------------------------------------------------------------------------------------


def render_result(result: Any) -> None:
    """A run's result: one section per output (text as text, data in the JSON viewer), and the raw JSON."""
    if isinstance(result, dict) and 0 < len(result) <= 12:
        for name, value in result.items():
            st.markdown(f"**{md_escape(name)}**")
            value_block(value)
        with st.expander("Result as JSON"):
            st.json(result, expanded=True)
    else:
        value_block(result)


def render_outcome(info: RunInfo) -> None:
    """The run's result (or why there is none)."""
    if info.status == "completed":
        render_result(info.result)
    elif info.status == "failed":
        where = f" at node {code(info.error_node)}" if info.error_node else ""
        error_block(f"The run failed{where}.", info.error or "unknown error")
    elif info.status == "cancelled":
        st.warning("The run was cancelled; it has no result.")
    elif info.status == "interrupted":
        st.warning("The run was interrupted before it finished. Resume it from History.")
        if info.error:
            st.text(info.error)
    else:
        st.caption("The result appears here when the run finishes.")


def render_tokens(view: RunView, info: RunInfo) -> None:
    """Token totals (marked when estimated, with the share of failed tries), the estimated cost (prices from
    the Settings page) and the offline badge."""
    prompt = max(view.usage.prompt_tokens, info.prompt_tokens)
    completion = max(view.usage.completion_tokens, info.completion_tokens)
    estimated = view.usage.estimated or info.tokens_estimated
    failed = max(view.usage.failed_tokens, info.failed_tokens)
    cost = cost_of(view.usage, prices_from(get_runtime().settings.saved.prices))
    label, mark = (" (estimated)", "~") if estimated else ("", "")
    cols = st.columns(4)
    cols[0].metric("Prompt tokens" + label, f"{mark}{prompt:,}")
    cols[1].metric("Completion tokens" + label, f"{mark}{completion:,}")
    cols[2].metric("Total tokens" + label, f"{mark}{prompt + completion:,}")
    at_least = f"≥ {format_usd(cost.usd)}" if cost.usd else "—"
    shown = format_usd(cost.usd) if cost.complete else at_least
    cols[3].metric(
        "Estimated cost", shown, help="Tokens × the prices set on the Settings page; the offline model is free."
    )
    if estimated:
        st.caption(TOKENS_ESTIMATED)
    if failed:
        st.caption(
            f"{mark}{failed:,} of these tokens went to tries that failed (answers the server cut off); "
            "they are in the totals and the cost."
        )
    if cost.unpriced:
        names = ", ".join(md_escape(m) for m in cost.unpriced)
        st.caption(f"No price set for {names}: add it on the Settings page to see what this run cost.")
    if view.usage.offline:
        st.markdown(OFFLINE_BADGE)


TOKENS_ESTIMATED = (
    "Estimated counts: the endpoint sent no token usage, so they are estimated at about four characters a token."
)


def tool_call_rows(view: RunView) -> list[dict[str, Any]]:
    start = view.started_ts or 0.0
    rows = []
    for call_id, entry in view.tool_calls.items():
        called, result = entry.get("called"), entry.get("result")
        data = dict(called.data) if called is not None else {}
        done = dict(result.data) if result is not None else {}
        if result is None:
            outcome, state = "…", "running"
        elif "error" in done:
            outcome, state = f"Error: {done['error']}", "error"
        else:
            outcome, state = compact_json(done.get("result"), 600), "ok"
        rows.append(
            {
                "at": round((called.ts if called is not None else result.ts) - start, 3) if start else None,
                "node": entry.get("node") or "",
                "tool": data.get("tool") or done.get("tool") or "",
                "args": compact_json(data.get("args"), 400),
                "result / error": clip(outcome, 600),
                "ms": done.get("duration_ms"),
                "status": state,
                "call": call_id,
            }
        )
    return rows


_ERROR_CELL = "color: #d33; font-weight: 600"
_MAX_FAILED_SHOWN = 10


def _red_errors(row: pd.Series) -> list[str]:
    return [_ERROR_CELL if row.get("status") == "error" else "" for _ in row]


def render_tool_calls(view: RunView) -> None:
    """The run's tool calls as a table (failed calls in red), then each failed call's error in red."""
    rows = tool_call_rows(view)
    if not rows:
        st.caption("No tool calls.")
        return
    frame = pd.DataFrame(rows)
    st.dataframe(
        frame.style.apply(_red_errors, axis=1),
        hide_index=True,
        width="stretch",
        column_config={
            "at": st.column_config.NumberColumn("at (s)", format="%.3f", help="seconds since the run started"),
            "ms": st.column_config.NumberColumn("duration (ms)", format="%.1f"),
        },
    )
    failed = [(call_id, entry) for call_id, entry in view.tool_calls.items() if _failed(entry)]
    for call_id, entry in failed[:_MAX_FAILED_SHOWN]:
        called, result = entry.get("called"), entry["result"]
        data = dict(result.data)
        tool = data.get("tool") or (called.data.get("tool") if called is not None else None) or "?"
        node = entry.get("node")
        where = f" in node {code(node)}" if node else ""
        error_block(f"Tool {code(tool)} failed{where} (call {code(call_id)}).", data.get("error") or "unknown error")
        if data.get("detail"):
            with st.expander("Details: output, traceback or the backend's own error"):
                st.code(clip(data["detail"], 8000), language=None, wrap_lines=True)
    if len(failed) > _MAX_FAILED_SHOWN:
        st.caption(f"{len(failed) - _MAX_FAILED_SHOWN} more failed calls are in the table above.")


def _failed(entry: dict[str, Any]) -> bool:
    result = entry.get("result")
    return result is not None and "error" in result.data


def render_memory(view: RunView) -> None:
    if not view.memory:
        st.caption("No memory reads or writes.")
        return
    for event in view.memory:
        data = dict(event.data)
        agent = code(data.get("agent_id") or event.node_id or "?")
        if event.type == "memory.recalled":
            hits = data.get("hits")
            count = len(hits) if isinstance(hits, list) else hits
            st.markdown(f":material/manage_search: **recalled** for {agent}: {md_escape(count)} hit(s) for the query")
            st.text(clip(data.get("query", ""), 300))
            if isinstance(hits, list) and hits:
                st.dataframe(pd.DataFrame([_hit_row(h) for h in hits]), hide_index=True, width="stretch")
        else:
            extra = {k: v for k, v in data.items() if k != "agent_id"}
            st.markdown(f":material/save: **saved** for {agent}")
            if extra:
                st.text(compact_json(extra, 300))


def _hit_row(hit: Any) -> dict[str, Any]:
    if isinstance(hit, dict):
        row = {
            k: (v if isinstance(v, (int, float)) else clip(compact_json(v) if not isinstance(v, str) else v, 300))
            for k, v in hit.items()
        }
        return row
    return {"hit": clip(hit, 300)}


def render_log(view: RunView, *, limit: int = 300) -> None:
    if not view.logs:
        st.caption("No log lines.")
        return
    start = view.started_ts or 0.0
    rows = [
        {
            "at (s)": round(e.ts - start, 3) if start else None,
            "level": str(e.data.get("level", "info")),
            "node": e.node_id or "",
            "message": clip(e.data.get("message", ""), 1000),
        }
        for e in view.logs[-limit:]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render_streams(view: RunView, labels: dict[str, str], *, limit: int | None = None) -> None:
    """The agents' streamed text, per node (and per item of a map): running nodes first, then the latest.

    Args:
        view: the folded run.
        labels: node id -> label to show.
        limit: show at most this many outputs (the running ones always); the live page keeps its
            redraws small with it, History shows them all.
    """
    if not view.tokens:
        st.caption("No model output yet.")
        return
    latest_first = list(reversed(view.tokens.items()))
    running = [(k, t) for k, t in latest_first if view.node_status.get(k.split("[", 1)[0]) == "running"]
    others = [(k, t) for k, t in latest_first if view.node_status.get(k.split("[", 1)[0]) != "running"]
    shown = running + others[: max(0, limit - len(running))] if limit is not None else running + others
    for key, text in shown:
        node = key.split("[", 1)[0]
        status = view.node_status.get(node, "pending")
        icon = NODE_ICONS.get(status, NODE_ICONS["pending"])
        item = f" · item {md_escape(key[len(node) + 1 : -1])}" if key != node else ""
        with st.container(border=True):
            st.caption(f"{icon} **{md_escape(labels.get(node, node))}**{item} · {md_escape(status)}")
            tail = text if len(text) <= 6000 else "… " + text[-6000:]
            text_block(tail, limit=7000)
    hidden = len(latest_first) - len(shown)
    if hidden:
        st.caption(f"… and {hidden} earlier output(s): every node's output is in History once the run ends.")


def attempt_headline(attempt: Attempt) -> str:
    """``"Earlier attempt (run period 1): node `b` failed after 1.2 s"`` (Markdown; the node id as code)."""
    took = f" after {duration(attempt.duration_ms / 1000)}" if attempt.duration_ms is not None else ""
    item = f" #{attempt.execution}" if attempt.execution else ""
    return (
        f"Earlier attempt (before resume {attempt.period}): node {code(attempt.node_id + item)} "
        f"{attempt.shown_status}{took}"
    )


def render_earlier_attempts(view: RunView, *, limit: int = 10) -> None:
    """The tries a resume replaced, each marked and with its error text (red when it failed)."""
    attempts = view.earlier.attempts
    if not attempts:
        return
    resumes = view.clock.resumes
    again = "1 node execution" if len(attempts) == 1 else f"{len(attempts)} node executions"
    st.caption(
        f":material/history: Resumed {resumes}×: the resume ran {again} again; what came before is kept "
        "(History's Nodes tab lists every attempt)."
    )
    failed = [a for a in attempts if a.status == "failed"]
    for attempt in failed[:limit]:
        error_block(attempt_headline(attempt) + ".", attempt.error or "unknown error")
    others = [a for a in attempts if a.status != "failed"]
    if others:
        st.caption(" · ".join(attempt_headline(a).replace("Earlier attempt ", "", 1) for a in others[:limit]))
    hidden = max(0, len(failed) - limit) + max(0, len(others) - limit)
    if hidden:
        st.caption(f"… and {hidden} more earlier attempt(s): History's Nodes tab lists every one.")
