"""Moving between pages with a subject: open a workflow in the Builder, watch a run."""

from __future__ import annotations

from typing import Any

import streamlit as st

BUILDER_DOC = "builder_doc"  # the workflow document being edited (dict)
BUILDER_SOURCE = "builder_source"  # where it came from: "example:<file>", "saved:<workflow id>", "new", "import"
RUN_ID = "run_id"  # the run the Run page shows
HISTORY_FOCUS = "history_focus"  # the run the History page opens


def open_in_builder(doc: dict[str, Any], source: str) -> None:
    st.session_state[BUILDER_DOC] = doc
    st.session_state[BUILDER_SOURCE] = source
    st.session_state.pop("builder_flow", None)  # the canvas is redrawn from the document
    st.switch_page("views/builder.py")


def watch_run(run_id: str) -> None:
    st.session_state[RUN_ID] = run_id
    st.switch_page("views/run.py")


def open_in_history(run_id: str) -> None:
    st.session_state[HISTORY_FOCUS] = run_id
    st.switch_page("views/history.py")
