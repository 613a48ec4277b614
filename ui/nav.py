"""Moving between pages with a subject: open a workflow in the Builder, watch a run.

A switch to the Run page can be overtaken: streamlit-flow reports its state
back after every redraw of the Builder's canvas (on accepting it and again
after its layout pass), and a report sent while the browser still shows the
Builder reruns the Builder, after the click's ``st.switch_page``. So a run
just started stays "pending" for ``PENDING_S``; a canvas report reaching the
Builder in that time goes on to the Run page (``follow_pending_run``), while
a plain visit to the Builder (no report) drops it.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

BUILDER_DOC = "builder_doc"  # the workflow document being edited (dict)
BUILDER_SOURCE = "builder_source"  # where it came from: "example:<file>", "saved:<workflow id>", "new", "import"
RUN_ID = "run_id"  # the run the Run page shows
HISTORY_FOCUS = "history_focus"  # the run the History page opens
PENDING_RUN = "nav_pending_run"  # (run id, time.monotonic() deadline): started, not yet shown on the Run page
PENDING_S = 5.0
GO_TO_RUN = "nav_go_to_run"  # set by a callback that started a run: switch to the Run page this run
RUN_PAGE = "views/run.py"


def open_in_builder(doc: dict[str, Any], source: str) -> None:
    st.session_state[BUILDER_DOC] = doc
    st.session_state[BUILDER_SOURCE] = source
    st.session_state.pop("builder_flow", None)  # the canvas is redrawn from the document
    st.switch_page("views/builder.py")


def watch_run(run_id: str) -> None:
    """From a page's body: show ``run_id`` on the Run page now."""
    _pending(run_id)
    st.switch_page(RUN_PAGE)


def watch_run_next(run_id: str) -> None:
    """From a widget callback (where pages cannot be switched yet): show ``run_id`` on the Run page
    as this script run starts (``app.py`` calls :func:`switch_requested`). The request is kept in the
    session, so a rerun that interrupts this one still honours it."""
    _pending(run_id)
    st.session_state[GO_TO_RUN] = True


def _pending(run_id: str) -> None:
    st.session_state[RUN_ID] = run_id
    st.session_state[PENDING_RUN] = (run_id, time.monotonic() + PENDING_S)


def switch_requested() -> None:
    """Called by ``app.py`` once the pages are known: carry out a ``watch_run_next``."""
    if st.session_state.pop(GO_TO_RUN, False):
        st.switch_page(RUN_PAGE)


def follow_pending_run(*, canvas_report: bool) -> None:
    """Called by the Builder: after a canvas report, finish a switch to the Run page it overtook."""
    pending = st.session_state.get(PENDING_RUN)
    if pending is None:
        return
    if not canvas_report or time.monotonic() >= pending[1]:
        del st.session_state[PENDING_RUN]  # the user came back to the Builder, or it is too late to tell
        return
    st.session_state[RUN_ID] = pending[0]
    st.switch_page(RUN_PAGE)


def open_in_history(run_id: str) -> None:
    st.session_state[HISTORY_FOCUS] = run_id
    st.switch_page("views/history.py")
