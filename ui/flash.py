"""Messages that outlive a rerun: what a page did just before ``st.rerun()``, or in a widget callback,
is shown once by the next script run, where the page asks for it (each place has its own key)."""

from __future__ import annotations

from typing import Literal

import streamlit as st

Kind = Literal["success", "info", "warning", "error"]
_SHOW = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


def later(key: str, message: str, kind: Kind = "success") -> None:
    """Keep ``message`` (markdown, already escaped) for the next :func:`show` of ``key``."""
    st.session_state.setdefault(key, []).append((kind, message))


def show(key: str) -> None:
    """Show the messages kept under ``key``, once."""
    for kind, message in st.session_state.pop(key, None) or []:
        _SHOW.get(kind, st.info)(message)
