"""Settings: the model endpoint, a connection test, where data lives, embeddings and limits.

The API key is never shown or stored here: it is read from the environment
or from ``.streamlit/secrets.toml``.
"""

from __future__ import annotations

import asyncio
import os

import streamlit as st

from engine import settings as user_settings
from engine.errors import ModelError
from engine.llm import endpoint_configured
from engine.llm.openai_model import OpenAIChatModel
from engine.model import Settings as WorkflowSettings
from tools import DEFAULT_MAX_RESULT_CHARS, DEFAULT_TIMEOUT_S
from ui.runtime import get_runtime
from ui.text import md_escape

st.title("Settings")

current = user_settings.load()

st.subheader("Model endpoint")
if endpoint_configured():
    st.success(f"Agents use an OpenAI-compatible endpoint: {md_escape(os.environ.get('OPENAI_BASE_URL') or 'api.openai.com')}.")
else:
    st.warning("No endpoint is configured: agents use the offline model that ships with the studio.")
key_source = user_settings.key_source()
st.caption(
    "API key: " + ("set (from the environment or .streamlit/secrets.toml; never shown)." if key_source else
                   "not set. Set OPENAI_API_KEY in the environment or in .streamlit/secrets.toml; local servers need none.")
)

with st.form("settings_form"):
    base_url = st.text_input(
        "Base URL", value=current.base_url or os.environ.get("OPENAI_BASE_URL", ""),
        placeholder="http://127.0.0.1:11434/v1 (Ollama) — empty for api.openai.com when a key is set",
        key="settings_base_url",
    )
    model = st.text_input("Default model", value=current.model or os.environ.get("OPENAI_MODEL", ""),
                          placeholder="gpt-4o-mini", key="settings_model")
    embeddings = st.radio(
        "Memory embeddings", ["offline", "openai"], index=0 if current.embeddings != "openai" else 1, horizontal=True,
        help="offline: all-MiniLM-L6-v2, shipped with the studio. openai: the endpoint's embeddings API.",
        key="settings_embeddings",
    )
    timeout = st.number_input(
        "Run timeout for new workflows (s)", min_value=1.0, value=current.new_workflow_timeout_s, placeholder="none",
        key="settings_timeout", help="Written into the settings of workflows made with New in the Builder; empty: no timeout.",
    )
    saved = st.form_submit_button("Save settings", type="primary")
if saved:
    path = user_settings.save(user_settings.Settings(base_url=base_url.strip(), model=model.strip(), embeddings=embeddings,
                                                     new_workflow_timeout_s=None if timeout is None else float(timeout)))
    st.success(f"Saved to {md_escape(path)}. New runs use these settings.")

if st.button("Test connection", key="settings_test", disabled=not endpoint_configured()):
    try:
        models = asyncio.run(OpenAIChatModel().check())
    except ModelError as exc:
        st.error(md_escape(exc))
    else:
        wanted = os.environ.get("OPENAI_MODEL")
        st.success(f"Connected: the endpoint lists {len(models)} model(s).")
        if wanted and models and wanted not in models:
            st.warning(f"The default model “{md_escape(wanted)}” is not among them.")
        st.text(", ".join(models[:50]))  # names from the endpoint: shown as plain text

st.subheader("Data")
store = get_runtime().store
st.markdown(f"Data directory: {md_escape(user_settings.data_dir())}")
st.markdown(f"Store: {md_escape(store.sqlite_file or 'DATABASE_URL (server)')} — {store.count_runs()} run(s)")
st.caption("Set DATA_DIR to move everything; DATABASE_URL for PostgreSQL; CHROMA_HOST/CHROMA_PORT for a Chroma server.")

st.subheader("Limits")
max_iterations = WorkflowSettings.model_fields["max_iterations"].default
st.markdown(
    f"- Per workflow: `settings.max_iterations` (default {max_iterations}) bounds how often a node may run; "
    "`settings.timeout_s` bounds the run (no default).\n"
    "- Per node: `retry.attempts`, `retry.backoff_s`, `timeout_s`.\n"
    f"- Tools: {DEFAULT_TIMEOUT_S:g} s per call unless the tool sets its own; results over "
    f"{DEFAULT_MAX_RESULT_CHARS:,} characters are truncated with a marker."
)
