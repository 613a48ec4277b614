"""Messages that outlive a rerun.

``later``/``show``: what a page did just before ``st.rerun()``, or in a widget
callback, is shown once by the next script run, where the page asks for it
(each place has its own key).

``pin``/``show_pinned``: a message that must stay until the user has read it.
A page whose component reruns the script by itself (the Builder's canvas
reports back after every redraw) would eat a once-only message within a
second; a pinned one stays, with a close button, until the user closes it or
the page pins another or ``unpin``s it.
"""

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


def pin(key: str, message: str, kind: Kind = "error") -> None:
    """Show ``message`` (markdown, already escaped) under ``key`` on every run until closed or replaced."""
    st.session_state[key] = (kind, message)


def unpin(key: str) -> None:
    """Take the message pinned under ``key`` away (no error when there is none)."""
    st.session_state.pop(key, None)


def show_pinned(key: str) -> None:
    """The message pinned under ``key``, if any, with a close button (widget key ``<key>_close``)."""
    pinned = st.session_state.get(key)
    if not pinned:
        return
    kind, message = pinned
    with st.container(horizontal=True, vertical_alignment="center"):
        _SHOW.get(kind, st.info)(message)
        st.button(
            "", key=f"{key}_close", icon=":material/close:", help="Dismiss this message", on_click=unpin, args=(key,)
        )
