"""The Builder's node palette: one click adds one node, also clicks in quick succession.

Streamlit merges two clicks of one ``st.button`` that reach the server before
the rerun of the first has started (a button's value is "clicked or not", not
a count), so a quick double-click on a palette button added one node, and two
clicks 40 ms apart lost one in a dozen browser tries. This palette is a small
``st.components.v2`` component whose value is a click log instead: every click
gets the next number of a counter that lives as long as the browser page, the
value carries the last clicks, and the page applies the ones it has not
applied yet (``take_clicks``), so merged reruns lose nothing.

Taking and applying is one step with no ``st.session_state`` access in
between: a newer rerun can stop the script at any such access (Streamlit's
fast reruns), and a click marked as taken but not yet applied was lost for
good. The "last click applied" marker is a dict updated in place right
after the caller's ``apply``.

The buttons are built with DOM calls from the node types, labels and icon
names Python passes in (``textContent``, never HTML); the component's code is
ours. Icons are Material Symbols ligatures in the font Streamlit already loads
for its own ``:material/...:`` icons, so no emoji font is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

KEY = "builder_palette"  # the component's key: its value (the click log) lives in st.session_state[KEY]
SEEN = "builder_palette_seen"  # {"page": page id, "seq": number of the last click applied}, updated in place
LOG_SIZE = 32  # clicks the value carries: more than can happen between two reruns

_JS = """
export default function(component) {
    const { data, setStateValue, parentElement } = component;
    const clicks = window.__studioPaletteClicks
        || (window.__studioPaletteClicks = { page: Math.random().toString(36).slice(2), seq: 0, log: [] });
    let box = parentElement.querySelector(".palette");
    if (!box) {
        box = document.createElement("div");
        box.className = "palette";
        parentElement.appendChild(box);
    }
    // Buttons are updated in place, never replaced while the types stay the same: a button swapped
    // between a click's mousedown and mouseup (a rerun drawing the palette again) gets no click event.
    const types = data.buttons.map((item) => item.type).join(",");
    if (box.dataset.types !== types) {
        box.replaceChildren();
        for (const item of data.buttons) {
            const button = document.createElement("button");
            button.type = "button";
            button.dataset.nodeType = item.type;
            const icon = document.createElement("span");
            icon.className = "icon";
            icon.setAttribute("aria-hidden", "true");
            button.appendChild(icon);
            const text = document.createElement("span");
            text.className = "label";
            button.appendChild(text);
            button.addEventListener("click", () => {
                const state = box.__palette;
                clicks.seq += 1;
                clicks.log.push([clicks.seq, item.type]);
                clicks.log = clicks.log.slice(-state.logSize);
                state.setStateValue("clicks", { page: clicks.page, seq: clicks.seq, log: clicks.log });
            });
            box.appendChild(button);
        }
        box.dataset.types = types;
    }
    box.__palette = { setStateValue, logSize: data.log_size };
    data.buttons.forEach((item, index) => {
        const button = box.children[index];
        const icon = button.querySelector(".icon");
        // a Material Symbols ligature in Streamlit's own icon font (no emoji font needed)
        icon.textContent = item.icon || "";
        icon.hidden = !item.icon;
        button.querySelector(".label").textContent = item.label;
        button.title = item.help;
        button.disabled = Boolean(data.disabled);
    });
}
"""

_CSS = """
.palette { display: flex; flex-wrap: wrap; gap: 0.375rem; }
button {
    display: inline-flex;
    align-items: center;
    gap: 0.3rem;
    min-height: 2.25rem;
    padding: 0.25rem 0.65rem;
    white-space: nowrap;
    overflow: hidden;
    text-overflow: ellipsis;
    border-radius: 0.5rem;
    border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2));
    background: var(--st-background-color, #fff);
    color: var(--st-text-color, inherit);
    font: inherit;
    font-size: 0.875rem;
    cursor: pointer;
}
.icon {
    font-family: "Material Symbols Rounded";
    font-weight: 400;
    font-style: normal;
    font-size: 1.2rem;
    line-height: 1;
    letter-spacing: normal;
    text-transform: none;
    white-space: nowrap;
    word-wrap: normal;
    direction: ltr;
    font-feature-settings: "liga";
    -webkit-font-smoothing: antialiased;
}
button:hover:enabled { border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b); }
button:active:enabled { background: var(--st-secondary-background-color, #f0f2f6); }
button:disabled { opacity: 0.45; cursor: not-allowed; }
"""

_palette = st.components.v2.component("workflow_studio.builder_palette", js=_JS, css=_CSS)


def render(buttons: list[dict[str, str]], *, disabled: bool) -> None:
    """The palette, one row: ``buttons`` are ``{"type", "label", "help", "icon"}`` (``icon``: a Material
    Symbols name, drawn in Streamlit's icon font); clicks are taken by :func:`take_clicks`."""
    _palette(key=KEY, data={"buttons": buttons, "disabled": disabled, "log_size": LOG_SIZE})


def take_clicks(apply: Callable[[list[str]], None]) -> None:
    """Hand the node types clicked since the last call, in click order, to ``apply`` and mark them taken.

    ``apply`` must not touch ``st.session_state`` (it runs between the reads and the in-place marker
    update, where nothing may stop the script)."""
    value: Any = st.session_state.get(KEY)
    clicks = value.get("clicks") if hasattr(value, "get") else None
    if not isinstance(clicks, dict) or not isinstance(clicks.get("seq"), int):
        return
    seen = st.session_state.get(SEEN)
    if not isinstance(seen, dict):
        seen = {"page": None, "seq": 0}
        st.session_state[SEEN] = seen
    page = clicks.get("page")
    last = seen["seq"] if page == seen["page"] else 0  # a reloaded page counts from 1 again
    new = [
        str(node_type)
        for seq, node_type in (
            entry for entry in clicks.get("log") or [] if isinstance(entry, list) and len(entry) == 2
        )
        if isinstance(seq, int) and seq > last
    ]
    apply(new)
    seen["page"], seen["seq"] = page, max(last, clicks["seq"])
