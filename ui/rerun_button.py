""""Rerun from here" in the node panel: fork a finished run from one node (``Runtime.rerun``).

The new run reuses the source's output of every node that does not depend on this one and
runs this node and everything downstream again (the rule: ``engine.fork``). Two optional
edits, both for the new run only: this node's config (JSON, the keys given replace the
node's), and a pinned output of one node that is reused (JSON). Text that is not JSON, or a
request the engine refuses, is said in one line; otherwise the browser goes to the new run.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from engine.errors import EngineError
from engine.runtime import RunInfo, Runtime
from ui.nav import watch_run
from ui.node_trace import RunTrace
from ui.text import md_escape

FINISHED = ("completed", "failed", "cancelled")


def parse_json(text: str, what: str) -> tuple[Any, str | None]:
    """(value, None) or (None, a one-line error naming ``what``)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."


def request_from(
    config_text: str, original: dict[str, Any], pin_node: str | None, pin_text: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """(config edit or None, pinned outputs or None, error or None) from the form's text."""
    config: dict[str, Any] | None = None
    if config_text.strip() and config_text.strip() != json.dumps(original, indent=2, ensure_ascii=False).strip():
        value, error = parse_json(config_text, "The config")
        if error:
            return None, None, error
        if not isinstance(value, dict):
            return None, None, "The config must be a JSON object ({…})."
        config = value if value != original else None
    outputs: dict[str, Any] | None = None
    if pin_node:
        value, error = parse_json(pin_text, f"The pinned output of {pin_node}")
        if error:
            return None, None, error
        outputs = {pin_node: value}
    return config, outputs, None


def _start(runtime: Runtime, run_id: str, node_id: str, original: dict[str, Any], key: str) -> None:
    config, outputs, error = request_from(
        st.session_state.get(f"{key}_config", ""),
        original,
        st.session_state.get(f"{key}_pin"),
        st.session_state.get(f"{key}_pin_value:{st.session_state.get(f'{key}_pin')}", ""),
    )
    if error is None:
        try:
            new_id = runtime.rerun(run_id, node_id, outputs=outputs, config=config)
        except EngineError as exc:
            error = str(exc).splitlines()[0] + "".join(f" {line.strip()}" for line in str(exc).splitlines()[1:3])
        else:
            st.session_state[f"{key}_started"] = new_id
            return
    st.session_state[f"{key}_error"] = error


def rerun_form(
    runtime: Runtime, run_id: str, node: dict[str, Any], info: RunInfo, *, trace: RunTrace, key: str
) -> None:
    """The button, its optional edits, and the switch to the new run once it started."""
    node_id = node["id"]
    key = f"{key}:{node_id}"  # each node's form keeps its own edits
    started = st.session_state.pop(f"{key}_started", None)
    if started:
        watch_run(started)  # (a callback cannot switch pages: the page body does it)
    if info.status not in FINISHED:
        st.caption(
            ":material/replay: **Rerun from here** is offered once the run has finished"
            + (" (resume an interrupted run from History first)." if info.status == "interrupted" else ".")
        )
        return
    original = dict(node.get("config") or {})
    try:
        again = runtime.rerun_nodes(run_id, node_id)
    except EngineError as exc:
        again = None
        st.caption(f"Rerun is not possible: {md_escape(str(exc).splitlines()[0])}")
    if again is not None:
        st.caption(f"Runs again: {', '.join(md_escape(n) for n in again)}; every other node reuses this run's output.")
    with st.expander("Rerun options: edit this node's config, pin an upstream output", icon=":material/tune:"):
        st.caption("Both apply to the new run only; the workflow itself does not change.")
        st.text_area(
            "This node's config (JSON)",
            value=json.dumps(original, indent=2, ensure_ascii=False),
            key=f"{key}_config",
            height=140,
        )
        rerun = set(again or [node_id])
        others = [n for n in trace.nodes if n not in rerun and trace.nodes[n] and trace.nodes[n][-1].has_output]
        pin = st.selectbox(
            "Pin the output of",
            others,
            index=None,
            key=f"{key}_pin",
            placeholder="No pinned output (the source run's outputs are reused as they were)",
        )
        if pin:
            source = trace.nodes[pin][-1].output
            st.text_area(
                f"Output of {pin} in the new run (JSON)",
                value=json.dumps(source, indent=2, ensure_ascii=False),
                key=f"{key}_pin_value:{pin}",
                height=120,
            )
    st.button(
        "Rerun from here",
        key=f"{key}_go",
        type="primary",
        icon=":material/replay:",
        help="A new run of this run's workflow version: nodes that do not depend on this one reuse their "
        "output, this node and everything after it run again.",
        on_click=_start,
        args=(runtime, run_id, node_id, original, key),
    )
    error = st.session_state.pop(f"{key}_error", None)
    if error:
        st.error(md_escape(error), icon=":material/error:")
