"""The Builder's "Run" popover: a form generated from the workflow's ``inputs`` schema,
and starting the run (which then opens the Run page).

Starting is two steps, because a newer rerun can stop a script at any
``st.session_state`` access, callbacks included (Streamlit's
``runner.fastReruns``: the Builder's canvas reports back after each redraw,
so such reruns are common there). The submit button's callback only checks
the form and records a request with a run id chosen there
(:func:`_submit_run`); ``app.py`` then carries the request out at the start
of every script run until it is done (:func:`carry_out_start`). The run is
started with that id, so doing it again after an interruption never starts
it twice, and an interruption after the start cannot lose the switch to the
Run page.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import uuid
from typing import Any

import streamlit as st

from engine import InputsInvalid, WorkflowInvalid
from engine.errors import EngineError, Problem
from ui import builder_doc as bd
from ui import builder_state as bs
from ui.nav import BUILDER_DOC, mark_pending, show_run
from ui.runtime import get_runtime
from ui.text import md_escape

RUN_ERRORS = "builder_run_errors"  # why "Start run" did not start (problems), shown once in the Run popover
START = "builder_start"  # (run id, document, inputs): a run the form asked for, until carry_out_start has done it


def _run_key(name: str, spec: dict[str, Any]) -> str:
    sig = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"builder_run_{name}_{sig}"  # a changed schema gets a fresh field with its new default


def run_form(*, blocked: bool) -> None:
    """A form generated from the workflow's ``inputs``; starting a run opens the Run page."""
    doc = bs.doc()
    inputs = (
        {k: v for k, v in (doc.get("inputs") or {}).items() if isinstance(v, dict)}
        if isinstance(doc.get("inputs"), dict)
        else {}
    )
    with st.form("builder_run_form", border=False):
        for name, spec in inputs.items():
            _run_field(name, spec)
        if blocked:
            st.caption(":red[The workflow has problems (listed under the canvas); fix them to run it.]")
        if inputs:
            st.caption("\\* required")
        else:
            st.caption("This workflow takes no inputs.")
        st.form_submit_button(
            "Start run",
            type="primary",
            icon=":material/play_arrow:",
            disabled=blocked,
            help="Fix the problems listed under the canvas first." if blocked else None,
            # a callback, not `if submitted:` in the page: a canvas report arriving while the page runs
            # interrupts the body and the submit would be lost; callbacks run before any interruption
            on_click=_submit_run,
            args=(inputs,),
        )
    errors = st.session_state.pop(RUN_ERRORS, None)
    if errors:
        st.error("Not started:\n" + "\n".join(f"- **{md_escape(p.where)}** {md_escape(p.message)}" for p in errors))


def _submit_run(inputs: dict[str, dict[str, Any]]) -> None:
    raw = {name: st.session_state.get(_run_key(name, spec)) for name, spec in inputs.items()}
    values, errors = collect_inputs(inputs, raw)
    if errors:
        st.session_state[RUN_ERRORS] = errors
    else:
        st.session_state[START] = (uuid.uuid4().hex, copy.deepcopy(bs.doc()), values)


def carry_out_start() -> None:
    """Called by ``app.py`` before the page: start the run the form asked for and open the Run page.
    Safe to repeat from the top after an interruption anywhere (see the module's docstring)."""
    request = st.session_state.get(START)
    if request is None:
        return
    run_id, doc, values = request
    try:
        get_runtime().submit(doc, values, run_id=run_id)
    except (InputsInvalid, WorkflowInvalid) as exc:
        problems = exc.problems
    except EngineError as exc:  # the store or the runtime: say what, and do not ask again on every rerun
        problems = [Problem("run", str(exc))]
    else:
        problems = []
    if problems:
        st.session_state[RUN_ERRORS] = problems
        st.session_state.pop(START, None)
        return
    # Runtime.submit saved the workflow (by name): the Builder, still showing it, now shows that saved version.
    row = bs.reader().find_workflow(str(doc.get("name")))
    if row is not None and bs.readonly() is None and st.session_state.get(BUILDER_DOC) == doc:
        bs.now_saved(bd.normalized(doc), row.id)
    mark_pending(run_id)  # before the request is dropped: from here a stopped script still ends on the Run page
    st.session_state.pop(START, None)
    show_run(run_id)


def _run_field(name: str, spec: dict[str, Any]) -> None:
    kind = spec.get("type", "string")
    required = "default" not in spec
    default = spec.get("default")
    label = md_escape(name) + (" \\*" if required else "")
    helptext = md_escape(spec.get("description") or "") or None
    key = _run_key(name, spec)
    if kind == "string":
        st.text_area(label, value=default if isinstance(default, str) else "", key=key, height=80, help=helptext)
    elif kind in ("number", "integer"):
        ok = isinstance(default, (int, float)) and not isinstance(default, bool) and math.isfinite(default)
        if kind == "integer":
            st.number_input(
                label, value=int(default) if ok else None, step=1, key=key, help=helptext, placeholder="a whole number"
            )
        else:
            st.number_input(
                label, value=float(default) if ok else None, key=key, help=helptext, placeholder="a number", format="%g"
            )
    elif kind == "boolean":
        st.checkbox(label, value=bool(default), key=key, help=helptext)
    else:
        text = json.dumps(default, indent=2, ensure_ascii=False) if default is not None else ""
        st.text_area(f"{label} ({md_escape(kind)}, JSON)", value=text, key=key, height=100, help=helptext)


def collect_inputs(inputs: dict[str, dict[str, Any]], raw: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The run's inputs from the form's raw values; fields left empty are left out (defaults apply)."""
    values: dict[str, Any] = {}
    errors: list[Problem] = []
    for name, spec in inputs.items():
        kind = spec.get("type", "string")
        value = raw.get(name)
        if kind == "string":
            if value in (None, "") and ("default" not in spec or spec.get("default") is None):
                continue
            values[name] = str(value or "")
        elif kind in ("number", "integer"):
            if value is None:
                continue
            values[name] = int(value) if kind == "integer" else value
        elif kind == "boolean":
            values[name] = bool(value)
        else:
            text = str(value or "").strip()
            if not text:
                continue
            try:
                values[name] = bd.parse_value(kind, text)
            except ValueError as exc:
                errors.append(Problem(f"input '{name}'", str(exc)))
    return values, errors

