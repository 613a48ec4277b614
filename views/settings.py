"""Settings: the model endpoint, a connection test, MCP servers, where data lives, embeddings and limits.

The API key is never shown or stored here: it is read from the environment
or from ``.streamlit/secrets.toml``. The form shows the values in effect: the
runtime's ``Settings`` (``engine.config``: environment variables win over the
settings file at startup), and says under a field when its value comes from
the environment. Save writes the settings file and hands the runtime new
``Settings`` for the runs started after it; it never writes ``os.environ``. A base URL is shown in its
public form (no user-info, query or fragment, which may hold a password or a
key): see the Base URL field for how the hidden part is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping

import pandas as pd
import streamlit as st

from engine import settings as user_settings
from engine.config import Settings as StudioSettings
from engine.costs import prices_from, prices_from_rows
from engine.errors import ModelError, StoreError
from engine.llm import endpoint_status
from engine.llm.openai_model import OpenAIChatModel
from engine.model import Settings as WorkflowSettings
from tools import DEFAULT_MAX_RESULT_CHARS, DEFAULT_TIMEOUT_S
from tools.mcp import config as mcp_config
from ui import flash
from ui.runtime import get_runtime
from ui.text import md_escape

_SEEDED = "settings_seeded"  # widget key -> hash of the value in effect last put into that widget
_FLASH = "settings_flash"  # the "Saved" message, shown after the rerun that refreshes the form
_PRICES_FLASH = "settings_prices_flash"
_MCP_FLASH = "settings_mcp_flash"
_EXAMPLE_URL = "http://127.0.0.1:11434/v1"


def _seed(key: str, shown: object, source: object) -> None:
    """Put ``shown`` into widget ``key`` when the value in effect (``source``) changed since it was last put there.

    Keyed widgets keep their own value across reruns, so without this the form
    would go on showing what was in effect when the page was first opened (or
    a URL as typed, password included, after it was saved).
    """
    seeded: dict[str, int] = st.session_state.setdefault(_SEEDED, {})
    mark = hash((type(source).__name__, source))
    if seeded.get(key) != mark or key not in st.session_state:
        st.session_state[key] = shown
        seeded[key] = mark


def _source_caption(field: str, sources: Mapping[str, user_settings.Source]) -> None:
    """Under a field: where its value in effect comes from, when that is the environment."""
    variable = user_settings.ENV_VARIABLES[field]
    if sources.get(field) == "override":
        st.caption(
            f"In effect: `{variable}` from the environment, which wins over the saved value. Saving a change "
            "applies it here until the studio restarts; then the environment wins again."
        )
    elif sources.get(field) == "environment":
        st.caption(
            f"In effect: `{variable}` from the environment (the settings file has none). "
            "Left as it is, saving keeps it and does not copy it into the file."
        )


st.title("Settings")

runtime = get_runtime()
studio: StudioSettings = runtime.settings  # what the engine is handed now
saved_settings = studio.saved  # the settings file, as read at start or saved since
effective = studio.in_effect()  # what runs use (the environment wins at startup)
from_env = studio.sources

st.subheader("Model endpoint")
endpoint = endpoint_status(studio.llm)
if not endpoint.configured:
    st.warning("No endpoint is configured: agents use the offline model that ships with the studio.")
elif endpoint.problems:
    st.error(
        f"The endpoint URL in effect, {md_escape(endpoint.shown_url)}, is not usable: "
        f"{md_escape('; '.join(endpoint.problems))}. Enter a valid Base URL below (for example "
        f"{md_escape(_EXAMPLE_URL)}) and save."
    )
else:
    st.success(f"Agents use an OpenAI-compatible endpoint: {md_escape(endpoint.shown_url)}.")
_KEY_SET = "set (from the environment or .streamlit/secrets.toml; never shown)."
_KEY_UNSET = "not set. Set OPENAI_API_KEY in the environment or in .streamlit/secrets.toml; local servers need none."
st.caption("API key: " + (_KEY_SET if studio.llm.api_key else _KEY_UNSET))

# The Base URL field shows the URL in effect without its user-info, query and fragment (a password or an
# api-key=... must never reach the page). A user who leaves the field as shown expects the endpoint to stay
# as it is, so saving then keeps the hidden part (it could not be retyped without being shown); typing
# anything else replaces the whole URL, as typed; "Forget the hidden part" saves the URL as shown.
url_shown, url_hidden_part = user_settings.shown_base_url(effective)

with st.form("settings_form"):
    _seed("settings_base_url", url_shown, effective.base_url.strip())
    base_url = st.text_input(
        "Base URL",
        placeholder=f"{_EXAMPLE_URL} (Ollama) — empty for api.openai.com when a key is set",
        key="settings_base_url",
    )
    _source_caption("base_url", from_env)
    forget_hidden = False
    if url_hidden_part:
        st.caption(
            "The URL in effect has a user name, password, query or fragment, not shown here as it may hold a "
            "secret. Saving keeps it while this field shows the URL as it is now; type the whole URL to change it."
        )
        forget_hidden = st.checkbox(
            "Forget the hidden part",
            key="settings_forget_url_secrets",
            help="Save the URL as shown, without user name, password, query or fragment.",
        )
    _seed("settings_model", effective.model, effective.model)
    model = st.text_input("Default model", placeholder="gpt-4o-mini", key="settings_model")
    _source_caption("model", from_env)
    _seed("settings_embeddings", effective.embeddings, effective.embeddings)
    embeddings = st.radio(
        "Memory embeddings",
        ["offline", "openai"],
        horizontal=True,
        help="offline: all-MiniLM-L6-v2, shipped with the studio. openai: the endpoint's embeddings API.",
        key="settings_embeddings",
    )
    _source_caption("embeddings", from_env)
    _seed("settings_timeout", saved_settings.new_workflow_timeout_s, saved_settings.new_workflow_timeout_s)
    timeout = st.number_input(
        "Run timeout for new workflows (s)",
        min_value=1.0,
        value=None,
        placeholder="none",
        key="settings_timeout",
        help="Written into the settings of workflows made with New in the Builder; empty: no timeout.",
    )
    saved = st.form_submit_button("Save settings", type="primary")
if saved:
    edit = user_settings.edit(
        saved_settings,
        effective,
        base_url=base_url,
        forget_hidden_url=forget_hidden,
        model=model,
        embeddings=embeddings,
        new_workflow_timeout_s=None if timeout is None else float(timeout),
    )
    if edit.problems:
        st.error(
            f"Nothing was saved: the Base URL is not usable: {md_escape('; '.join(edit.problems))}. "
            f"Enter it like {md_escape(_EXAMPLE_URL)}, or leave it empty for api.openai.com."
        )
    else:
        try:  # the file, and in queue mode the database the workers read; never os.environ
            path = runtime.save_settings(edit.settings, keep=edit.keep)
        except OSError as exc:
            st.error(
                f"Nothing was saved: could not write {md_escape(studio.settings_file)} "
                f"({md_escape(exc.strerror or type(exc).__name__)}). Make that folder writable, or set DATA_DIR "
                "to a writable folder and restart the studio."
            )
        except StoreError as exc:
            st.error(f"Nothing was saved: {md_escape(exc)}")
        else:
            shared = " and to the database, where every worker reads it" if studio.queue.mode == "queue" else ""
            flash.later(_FLASH, f"Saved to {md_escape(path)}{shared}. New runs use these settings.")
            st.session_state.pop(_SEEDED, None)  # show what is in effect now (and no URL as typed)
            st.rerun()
flash.show(_FLASH)

if st.button("Test connection", key="settings_test", disabled=not endpoint.configured):
    try:
        llm = studio.llm
        client = OpenAIChatModel(api_key=llm.api_key, base_url=llm.base_url, default_model=llm.model)
        models = asyncio.run(client.check())
    except ModelError as exc:
        st.error(md_escape(exc))
    except Exception as exc:  # noqa: BLE001 - never a traceback; the text may quote the URL, so only its kind
        st.error(
            f"The connection test failed ({md_escape(type(exc).__name__)}). "
            "Check the Base URL above and that the server is running."
        )
    else:
        wanted = effective.model
        st.success(f"Connected: the endpoint lists {len(models)} model(s).")
        if wanted and models and wanted not in models:
            st.warning(f"The default model “{md_escape(wanted)}” is not among them.")
        st.text(", ".join(models[:50]))  # names from the endpoint: shown as plain text

st.subheader("Model prices")
st.caption(
    "US dollars per million tokens, as your provider lists them. Runs (Run and History pages) show an estimated "
    "cost for the models priced here; no price is built in (they change), and the offline model is free."
)
price_rows = pd.DataFrame(
    [
        {"model": m, "input": p.input_per_m, "output": p.output_per_m}
        for m, p in prices_from(saved_settings.prices).items()
    ],
    columns=["model", "input", "output"],
)
with st.form("settings_prices_form"):
    edited = st.data_editor(
        price_rows,
        key="settings_prices",
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "model": st.column_config.TextColumn("Model", help="Exactly as runs report it (see a run's Log)"),
            "input": st.column_config.NumberColumn("Input $ / 1M tokens", min_value=0.0, format="%.4f"),
            "output": st.column_config.NumberColumn("Output $ / 1M tokens", min_value=0.0, format="%.4f"),
        },
    )
    save_prices = st.form_submit_button("Save prices")
if save_prices:
    new_prices, price_problems = prices_from_rows(edited.to_dict("records"))
    if price_problems:
        st.error("Nothing was saved:\n" + "\n".join(f"- {md_escape(p)}" for p in price_problems))
    else:
        priced = dataclasses.replace(saved_settings, prices={m: p.to_dict() for m, p in new_prices.items()})
        try:  # only the prices change; what is in effect stays
            runtime.save_settings(priced, keep=tuple(user_settings.ENV_VARIABLES))
        except OSError as exc:
            st.error(
                f"Nothing was saved: could not write {md_escape(studio.settings_file)} "
                f"({md_escape(exc.strerror or type(exc).__name__)})."
            )
        except StoreError as exc:
            st.error(f"Nothing was saved: {md_escape(exc)}")
        else:
            flash.later(_PRICES_FLASH, f"Saved prices for {len(new_prices)} model(s).")
            st.rerun()
flash.show(_PRICES_FLASH)

st.subheader("MCP servers")
st.info(
    "An MCP server runs with the studio's privileges: a stdio server is a program started on this machine as the "
    "studio's user (no sandbox, unlike the python tool), an HTTP server is sent what agents pass it. "
    "Add only servers you trust.",
    icon=":material/shield:",
)
mcp_file = studio.tools.mcp_config_file
mcp_saved = mcp_config.read_document(mcp_file)
st.caption(
    f"Their tools are named `SERVER__tool` (see docs/tools.md). File: {md_escape(mcp_file)}. "
    f"Values of `env` and `headers` are shown as {mcp_config.MASK}: leave one so to keep it, type a new one to "
    "replace it. Saving restarts the servers."
)
_seed("settings_mcp", json.dumps(mcp_config.masked(mcp_saved), indent=2), json.dumps(mcp_saved, sort_keys=True))
with st.form("settings_mcp_form"):
    mcp_text = st.text_area("mcp.json", key="settings_mcp", height=220)
    save_mcp = st.form_submit_button("Save MCP servers")
if save_mcp:
    mcp_document, mcp_problems = mcp_config.edit(mcp_text, mcp_saved)
    if mcp_document is None:
        st.error("Nothing was saved:\n" + "\n".join(f"- {md_escape(p)}" for p in mcp_problems))
    else:
        try:
            mcp_config.save_document(mcp_file, mcp_document)
        except OSError as exc:
            st.error(
                f"Nothing was saved: could not write {md_escape(mcp_file)} "
                f"({md_escape(exc.strerror or type(exc).__name__)})."
            )
        else:
            runtime.reload_mcp()
            flash.later(_MCP_FLASH, f"Saved {len(mcp_document.get('mcpServers', {}))} MCP server(s).")
            st.session_state.pop(_SEEDED, None)
            st.rerun()
flash.show(_MCP_FLASH)
for problem in runtime.mcp_problems:
    st.warning(f"MCP config: {md_escape(problem)}", icon=":material/warning:")

st.subheader("Data")
reader = runtime.reader
st.markdown(f"Data directory: {md_escape(studio.data_dir)}")
st.markdown(f"Store: {md_escape(reader.sqlite_file or 'DATABASE_URL (server)')} — {reader.count_runs()} run(s)")
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
