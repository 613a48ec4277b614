"""Plumbing shared by the Builder's side-panel forms: safe Markdown code spans, the
"is the widget's value still there" guard, JSON text areas and their error lines.

Every form widget writes into the document from its ``on_change`` callback;
these helpers are what those callbacks have in common.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from ui.text import md_escape


def code(text: object) -> str:
    """Text as a Markdown code span (shown literally; a backtick in it cannot close the span)."""
    return "`" + str(text).replace("`", "ˋ").replace("\n", " ") + "`"


def present(*keys: str) -> bool:
    """Whether the widgets' values are there.

    When reruns are interrupted (quick clicks), Streamlit can call a widget's
    ``on_change`` although the widget's value is gone; such calls must change
    nothing (they would blank the field in the document).
    """
    return all(key in st.session_state for key in keys)


def json_field(key: str, apply: Callable[[Any], None], want: type | None = dict) -> None:
    """Callback body for a JSON text area: apply valid JSON, else keep an error to show."""
    if not present(key):
        return
    text = st.session_state.get(key) or ""
    try:
        value = json.loads(text) if text.strip() else ({} if want is dict else None)
    except json.JSONDecodeError as exc:
        st.session_state[key + "__error"] = (
            f"Not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); the last valid value is kept."
        )
        return
    if want is not None and not isinstance(value, want):
        st.session_state[key + "__error"] = (
            f"Must be a JSON {'object' if want is dict else want.__name__}; the last valid value is kept."
        )
        return
    st.session_state.pop(key + "__error", None)
    apply(value)


def show_error(key: str) -> None:
    """The error a callback left for the widget ``key`` (bad JSON, a refused rename), if any."""
    message = st.session_state.get(key + "__error")
    if message:
        st.error(md_escape(message), icon=":material/error:")
