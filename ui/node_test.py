"""The Builder's "Test node": run only the selected node and show its output in the inspector.

The inputs are those the node received in its latest run of this workflow
(``Runtime.node_test_context``), shown as editable JSON; without an earlier
run, the inputs its templates need, empty. The test runs on the runtime
(``Runtime.start_node_test``, engine/single_node.py): no run is created and
nothing reaches History. While it runs, a fragment polling every
``POLL_S`` shows the elapsed time and a Cancel button (the page stays usable); then the output (or the
error, in red) with tokens and tool calls. Model and tool text is shown as code or JSON, never as Markdown.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import streamlit as st

from engine.errors import EngineError
from engine.single_node import NodeTestContext, NodeTestResult
from ui import builder_state as bs
from ui.runtime import get_runtime
from ui.text import clip, md_escape

RUNNING = "builder_test_running"  # {"node", "test_id", "started"} while a test runs
RESULTS = "builder_test_results"  # slot -> the last NodeTestResult of that node (this session)
SOURCES = "builder_test_sources"  # slot -> NodeTestContext the values were filled from
ERROR = "builder_test_error"  # slot -> why the last Test node click did not start a test


def slot(node_id: str) -> str:
    """The node in the open workflow: another workflow's node of the same id has its own inputs and result.
    A workflow saved by its first run is a new slot, so its inputs are read again (now from that run)."""
    where = f"{bs.source()}\x00{bs.doc().get('name')}"
    return hashlib.sha1(where.encode()).hexdigest()[:10] + "." + node_id


def values_key(node_id: str) -> str:
    """The JSON text area's key (outside the form epochs: edits survive renames of other nodes)."""
    return f"builder_test_values.{slot(node_id)}"


def _fill(node_id: str) -> None:
    """Put the node's latest inputs into its text area (a store read, done once per node and on Reload)."""
    try:
        ctx = get_runtime().node_test_context(bs.doc(), node_id, workflow_id=bs.saved_id())
    except EngineError as exc:
        st.session_state[values_key(node_id)] = "{}"
        st.session_state.setdefault(ERROR, {})[slot(node_id)] = str(exc)
        return
    st.session_state.setdefault(SOURCES, {})[slot(node_id)] = ctx
    st.session_state[values_key(node_id)] = json.dumps(ctx.values(), indent=2, ensure_ascii=False)


def _reload(node_id: str) -> None:
    st.session_state.get(ERROR, {}).pop(slot(node_id), None)
    _fill(node_id)


def _start(node_id: str) -> None:
    errors = st.session_state.setdefault(ERROR, {})
    here = slot(node_id)
    errors.pop(here, None)
    text = st.session_state.get(values_key(node_id)) or "{}"
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        errors[here] = f"The test inputs are not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})."
        return
    if not isinstance(values, dict):
        errors[here] = 'The test inputs must be a JSON object: {"inputs": {...}, "nodes": {...}, "iteration": 0}.'
        return
    try:
        test_id = get_runtime().start_node_test(bs.doc(), node_id, values)
    except EngineError as exc:
        errors[here] = str(exc)
        return
    st.session_state[RUNNING] = {"node": here, "test_id": test_id, "started": time.time()}


def _cancel(test_id: str) -> None:
    get_runtime().cancel_node_test(test_id)


def panel(node_id: str) -> None:
    """The Test node button, its inputs and its last result, for ``node_id``."""
    key = values_key(node_id)
    here = slot(node_id)
    if key not in st.session_state:
        _fill(node_id)
    running = st.session_state.get(RUNNING)
    busy = running is not None and running["node"] == here
    with st.container(horizontal=True, vertical_alignment="center", key="builder_test_bar"):
        st.button(
            "Test node",
            key="builder_test_node",
            icon=":material/science:",
            on_click=_start,
            args=(node_id,),
            disabled=busy,
            help="Run only this node with the inputs below (its latest run's), without the rest of the graph. "
            "No run is recorded in History.",
        )
        source: NodeTestContext | None = st.session_state.get(SOURCES, {}).get(here)
        st.caption(_source_text(source), width="stretch")
    with st.expander("Test inputs", icon=":material/data_object:", expanded=False):
        st.text_area(
            "Inputs of the test (JSON: run inputs, upstream outputs, iteration)",
            key=key,
            height=160,
            help="`inputs` are the run's inputs, `nodes` the outputs of the upstream nodes this node's templates read "
            "(`nodes.<id>.output`), `iteration` the loop iteration.",
        )
        st.button(
            "Reload latest inputs",
            key="builder_test_reload",
            icon=":material/refresh:",
            on_click=_reload,
            args=(node_id,),
        )
    if (error := st.session_state.get(ERROR, {}).get(here)) is not None:
        st.error(md_escape(error), icon=":material/error:")
    if running is not None and busy:
        _wait(running)
    result: NodeTestResult | None = st.session_state.get(RESULTS, {}).get(here)
    if result is not None and not busy:
        show_result(result)


def _source_text(source: NodeTestContext | None) -> str:
    if source is None:
        return ""
    if source.source_run_id is None:
        return "No earlier run: the inputs it needs are empty; fill them in under Test inputs."
    when = f" ({bs.when_text(source.source_created_at)})" if source.source_created_at else ""
    missing = f"; no output of {', '.join(source.missing)} in it" if source.missing else ""
    if source.ran:
        return f"With the inputs of its latest run, run {source.source_run_id[:8]}{when}{missing}."
    return f"With the inputs of run {source.source_run_id[:8]}{when}, the latest; it did not run there{missing}."


POLL_S = 0.3  # how often the running test is looked at (only its fragment reruns, not the page)


@st.fragment(run_every=POLL_S)
def _wait(running: dict[str, Any]) -> None:
    """The running test's elapsed time and a Cancel button; once it has ended, the page shows its result.

    A fragment polling on its own: the rest of the page (the canvas, the other fields) stays usable.
    """
    test_id = running["test_id"]
    try:
        result = get_runtime().node_test_result(test_id)
    except KeyError:  # the runtime restarted: the test is gone
        st.session_state.pop(RUNNING, None)
        st.rerun(scope="app")
    if result is not None:
        st.session_state.pop(RUNNING, None)
        st.session_state.setdefault(RESULTS, {})[running["node"]] = result
        st.rerun(scope="app")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f":material/progress_activity: Testing… {time.time() - running['started']:.1f} s")
        st.button("Cancel test", key="builder_test_cancel", icon=":material/stop:", on_click=_cancel, args=(test_id,))


def show_result(result: NodeTestResult) -> None:
    """The output (or the error in red), duration, tokens, the rendered input and tool calls."""
    ms = result.duration_ms
    facts = [f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"]
    if result.prompt_tokens or result.completion_tokens:
        approx = "~" if result.tokens_estimated else ""
        estimated = " (estimated)" if result.tokens_estimated else ""
        facts.append(
            f"{approx}{result.prompt_tokens:,} prompt + "
            f"{approx}{result.completion_tokens:,} completion tokens{estimated}"
        )
    if result.models:
        facts.append(", ".join(result.models))
    if result.tool_calls:
        facts.append(f"{len(result.tool_calls)} tool call{'s' if len(result.tool_calls) != 1 else ''}")
    line = md_escape(" · ".join(facts))
    with st.container(border=True, key="builder_test_result"):
        if result.status == "completed":
            st.success(f"Output · {line}", icon=":material/check_circle:")
            if isinstance(result.output, (dict, list)):
                st.json(result.output, expanded=2)
            else:
                text = result.output if isinstance(result.output, str) else json.dumps(result.output)
                st.code(clip(text, 20_000), language=None, wrap_lines=True)
        elif result.status == "cancelled":
            st.warning(f"Cancelled · {line}", icon=":material/cancel:")
        else:
            st.error(f"Failed · {line}", icon=":material/error:")
            st.code(clip(result.error or "failed", 5_000), language=None, wrap_lines=True)
        for log in result.logs:
            st.caption(md_escape(clip(log, 500)))
        if result.tool_calls:
            with st.expander(f"Tool calls ({len(result.tool_calls)})", icon=":material/build:"):
                for call in result.tool_calls:
                    mark = ":green[ok]" if call.ok else ":red[error]"
                    st.markdown(f"**{md_escape(call.tool)}** {mark} · {call.duration_ms:.0f} ms")
                    st.json(
                        {"args": call.args, "result" if call.ok else "error": call.result if call.ok else call.error},
                        expanded=1,
                    )
        if result.input is not None:
            with st.expander("Input as rendered", icon=":material/input:"):
                st.json(result.input, expanded=1)
