"""Moving between pages with a subject: open a workflow in the Builder, watch a run.

A switch to the Run page can be overtaken: for a moment after it, the
browser still shows the Builder and can send reruns of it (streamlit-flow
reports its state after every redraw of the canvas, on accepting it and again
after its layout pass; other widgets and the address update send their own),
and each reruns the Builder after the click's ``st.switch_page``. So a run
just started stays "pending" for ``PENDING_S``: a Builder rerun in that time
goes on to the Run page (``follow_pending_run``); after it, the Builder stays.
The price: going back to the Builder within those seconds of starting a run
lands on the Run page once more.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

BUILDER_DOC = "builder_doc"  # the workflow document being edited (dict)
BUILDER_SOURCE = "builder_source"  # where it came from: "example:<file>", "saved:<workflow id>", "new", "import"
BUILDER_ARRIVING = "builder_arriving"  # (document, source, version) being opened, until the Builder has taken it
RUN_ID = "run_id"  # the run the Run page shows
HISTORY_FOCUS = "history_focus"  # the run the History page opens
HISTORY_LINKED = "history_linked"  # the last ?run= value the History page took from (or wrote to) the address
PENDING_RUN = "nav_pending_run"  # (run id, time.monotonic() deadline): started, not yet shown on the Run page
PENDING_S = 5.0
RUN_PAGE = "views/run.py"
RUN_LINKED = "run_linked"  # the last ?run= value the Run page took from (or wrote to) the address


def open_in_builder(doc: dict[str, Any], source: str) -> None:
    # one write: the Builder takes document and source together (ui.builder_state.finish_arrival)
    st.session_state[BUILDER_ARRIVING] = (doc, source, None)
    st.switch_page("views/builder.py")


def watch_run(run_id: str) -> None:
    """From a page's body: show ``run_id`` on the Run page now."""
    st.session_state[RUN_ID] = run_id
    show_run(run_id)


def mark_pending(run_id: str) -> None:
    """``run_id`` was just started from the Builder: a Builder rerun in the next ``PENDING_S`` goes on
    to the Run page (other pages have no canvas reporting back, so they need no pending switch)."""
    st.session_state[RUN_ID] = run_id
    st.session_state[PENDING_RUN] = (run_id, time.monotonic() + PENDING_S)


def show_run(run_id: str) -> None:
    """Switch with ``?run=`` already in the address: a switch clears the query, and the Run page
    setting it again afterwards could lose a race with the browser's own address update."""
    st.session_state[RUN_LINKED] = run_id
    st.switch_page(RUN_PAGE, query_params={"run": run_id})


def follow_pending_run() -> None:
    """Called by the Builder before it draws: finish a switch to the Run page that a rerun overtook."""
    pending = st.session_state.get(PENDING_RUN)
    if pending is None:
        return
    if time.monotonic() >= pending[1]:
        del st.session_state[PENDING_RUN]  # long enough after the start: the user came back to the Builder
        return
    st.session_state[RUN_ID] = pending[0]
    show_run(pending[0])


def open_in_history(run_id: str) -> None:
    """Show ``run_id`` on the History page, ``?run=`` in the address from the switch on (as :func:`show_run`)."""
    st.session_state[HISTORY_FOCUS] = st.session_state[HISTORY_LINKED] = run_id
    st.switch_page("views/history.py", query_params={"run": run_id})
