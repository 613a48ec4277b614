"""A code field: the Ace editor (streamlit-ace) with syntax highlighting, a fixed-width font and Tab that indents.

streamlit-ace ships Ace and its modes in its own frontend bundle (nothing is
fetched from a CDN: checked in a browser with every request outside the
dashboard's host recorded, and by the Playwright test of the Tools page), so
it works offline. Inside an ``st.form`` it sends its text with the form's
submit and causes no rerun while typing (``auto_update``). The value is kept
in ``st.session_state[key]`` like any widget's. The Builder's tool nodes edit a
code argument (the ``python`` tool's ``code``) with it too, applied with its
Apply button. When the package is missing, a text area in a fixed-width font
stands in.
"""

from __future__ import annotations

import streamlit as st

try:
    from streamlit_ace import st_ace
except ImportError:  # a minimal install: the plain text area below
    st_ace = None

ACE_LANGUAGES = {"python": "python", "json": "json", "javascript": "javascript", "sql": "sql"}


def code_field(
    label: str,
    *,
    value: str,
    key: str,
    language: str = "python",
    help: str | None = None,
    lines: int = 10,
    auto_update: bool = True,
) -> str:
    """A code editor labelled ``label`` (Markdown, already escaped); returns its current text.

    ``auto_update``: in a form, the text goes with the submit; outside one, every edit reruns the page.
    Without it the editor has an Apply button (and Ctrl+Enter), and only that sends the text.
    """
    if st_ace is None:
        text = st.text_area(label, value=value, key=key, height=22 * lines, help=help)
        st.html(f"<style>.st-key-{key} textarea {{ font-family: ui-monospace, monospace; tab-size: 4; }}</style>")
        return text
    with st.container(key=f"{key}__box"):
        st.markdown(label, help=help)
        text = st_ace(
            value=value,
            language=ACE_LANGUAGES.get(language, "plain_text"),
            theme="chrome",
            keybinding="vscode",
            min_lines=lines,
            max_lines=max(lines, 30),
            font_size=13,
            tab_size=4,
            show_gutter=True,
            wrap=False,
            auto_update=auto_update,
            key=key,
        )
    return str(text) if text is not None else value
