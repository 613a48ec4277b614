"""The one Runtime of the dashboard process, held by ``st.cache_resource``."""

from __future__ import annotations

import streamlit as st

from engine.runtime import Runtime


@st.cache_resource(show_spinner=False)
def get_runtime() -> Runtime:
    """The process-wide runtime (background loop + store); created on first use."""
    return Runtime()
