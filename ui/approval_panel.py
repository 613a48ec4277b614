"""The approval form on the Run page, and the "Waiting for you" list on Home.

A run whose approval node asked a person has status ``waiting``; this shows each
open request (its message, its fields to edit, a comment, one button per option)
and hands the decision to ``Runtime.decide`` (engine/approvals.py). It only
renders and calls the runtime: the rule lives in docs/semantics.md.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from engine.errors import DecisionInvalid, NotWaiting, RunNotFound
from engine.runtime import Runtime
from ui import flash
from ui.nav import watch_run
from ui.text import clip, md_escape

FLASH = "approval_flash"
DECIDED_BY = "dashboard"


def _message(text: object) -> str:
    """The request's message as literal Markdown, its line breaks kept."""
    return md_escape(text).replace("\n", "  \n")


def _field_input(key: str, name: str, value: Any) -> str:
    if isinstance(value, str):
        return st.text_area(name, value=value, key=f"{key}_field_{name}", height=160)
    return st.text_area(f"{name} (JSON)", value=json.dumps(value, indent=2), key=f"{key}_field_{name}")


def _parsed(request: dict[str, Any], typed: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The edited fields as values (JSON for the non-text ones) and the fields whose JSON does not parse."""
    values: dict[str, Any] = {}
    bad: list[str] = []
    for name, text in typed.items():
        if isinstance(request["fields"].get(name), str):
            values[name] = text
            continue
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            bad.append(name)
    return values, bad


def decided_note(run_id: str) -> None:
    """The last decision taken on this page for ``run_id``, until closed: the run goes on at once after a
    decision (no longer waiting, its page refreshing twice a second), so a once-only message would be gone
    before anyone read it."""
    flash.show_pinned(f"{FLASH}_{run_id}")


def render(runtime: Runtime, run_id: str) -> None:
    """The open requests of a waiting run, each a form with one button per option."""
    for request in runtime.waiting_approvals(run_id):
        node, execution = str(request["node"]), int(request.get("execution", 0))
        key = f"approval_{run_id}_{node}_{execution}"
        options = [str(o) for o in request.get("options") or []]
        with st.container(border=True, key=f"{key}_box"):
            st.markdown(f":material/front_hand: **Waiting for you** · node `{md_escape(node)}`")
            st.markdown(_message(request.get("message", "")))
            if request.get("timeout_at"):
                st.caption(f"Decided as `{md_escape(request.get('on_timeout'))}` if nobody decides in time.")
            with st.form(key, border=False):
                typed = {name: _field_input(key, name, value) for name, value in (request.get("fields") or {}).items()}
                comment = st.text_input("Comment", key=f"{key}_comment", placeholder="optional: why, or what to change")
                clicked: str | None = None
                for column, option in zip(st.columns(len(options) or 1), options, strict=False):
                    with column:
                        first = option == options[0]
                        if st.form_submit_button(
                            option, key=f"{key}_opt_{option}", type="primary" if first else "secondary", width="stretch"
                        ):
                            clicked = option
            if clicked is not None:
                _decide(runtime, run_id, node, clicked, request, typed, comment)


def _decide(  # noqa: PLR0913 - one decision's parts, passed once
    runtime: Runtime,
    run_id: str,
    node: str,
    decision: str,
    request: dict[str, Any],
    typed: dict[str, str],
    comment: str,
) -> None:
    fields, bad = _parsed(request, typed)
    if bad:
        st.error(f"Not JSON: {', '.join(md_escape(n) for n in bad)}. Fix the value and decide again.")
        return
    try:
        runtime.decide(run_id, node, decision, fields=fields, comment=comment, decided_by=DECIDED_BY)
    except (NotWaiting, DecisionInvalid, RunNotFound) as exc:
        st.error(md_escape(exc))
        return
    note = f"Decided **{md_escape(decision)}** for `{md_escape(node)}`."
    flash.pin(f"{FLASH}_{run_id}", note, "success")
    st.rerun()


def waiting_list(runtime: Runtime, limit: int = 20) -> None:
    """Home's "Waiting for you": waiting runs, what each asks, a button to decide on the Run page."""
    runs = runtime.reader.runs(limit=limit, status="waiting")
    if not runs:
        return
    st.subheader("Waiting for you")
    for run in runs:
        requests = runtime.waiting_approvals(run.run_id)
        with st.container(border=True):
            text, button = st.columns([4, 1.4], vertical_alignment="center")
            text.markdown(f":material/front_hand: **{md_escape(run.workflow_name)}**")
            for request in requests[:3]:
                text.caption(f"`{md_escape(request['node'])}`: {md_escape(clip(request.get('message', ''), 160))}")
            if button.button("Decide", key=f"home_decide_{run.run_id}", type="primary", width="stretch"):
                watch_run(run.run_id)
