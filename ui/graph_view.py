"""A run's graph, read-only and clickable, drawn straight into the page (no iframe).

The Run page used streamlit-flow (React Flow in an iframe, Markdown per node): the graph
appeared seconds after the page and a 2,000-node run took 20-30 s. This draws SVG with a
Streamlit custom component v2 (``st.components.v2.component``: HTML/JS mounted in the
page itself, ``graph_view.js`` next to this module), from a layout computed here
(``ui.graph_layout``). The drawing is built once per graph; a rerun with new statuses only
recolours (the live fragment calls it every half second). A click on a node comes back as
the node's id.

Node labels and types are set as text by the script (``textContent``), never as HTML.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import streamlit as st

from ui.graph_layout import BOX_H, BOX_W, GraphLayout, layout
from ui.status import COLOURS

SCRIPT = Path(__file__).resolve().with_name("graph_view.js").read_text(encoding="utf-8")
CSS = """
.gv-root { position: relative; width: 100%; font-family: "Source Sans Pro", "Source Sans 3", sans-serif; }
.gv-svg { display: block; width: 100%; background: #fafafa; border: 1px solid #e4e4e7; border-radius: 8px;
  touch-action: none; user-select: none; }
.gv-node { cursor: pointer; }
.gv-node rect { stroke-width: 2; }
.gv-node:hover rect, .gv-node:focus rect { stroke-width: 3.5; }
.gv-node:focus { outline: none; }
.gv-node[data-status="reused"] rect { stroke-dasharray: 6 4; }
.gv-selected rect { stroke: #0f172a !important; stroke-width: 4 !important; }
.gv-label { font-size: 15px; font-weight: 600; fill: #18181b; pointer-events: none; }
.gv-kind { font-size: 12.5px; fill: #52525b; pointer-events: none; }
.gv-tiny .gv-label, .gv-tiny .gv-kind, .gv-tiny .gv-when { display: none; }
.gv-edge { fill: none; stroke: #94a3b8; stroke-width: 1.6; }
.gv-arrow { fill: #94a3b8; }
.gv-when { font-size: 12px; fill: #475569; paint-order: stroke; stroke: #fafafa; stroke-width: 4px;
  pointer-events: none; }
.gv-tools { display: flex; justify-content: flex-end; gap: 4px; margin-bottom: 4px; }  /* over the graph, not on it */
.gv-tools button { width: 28px; height: 28px; border: 1px solid #d4d4d8; border-radius: 6px; background: #fff;
  cursor: pointer; font-size: 16px; line-height: 1; color: #3f3f46; }
.gv-tools button:hover { background: #f4f4f5; }
"""
MAX_HEIGHT_PX = 560  # a graph taller than this (fitted to the page's width) is scaled down to it
MAX_HEIGHT_LARGE_PX = 760  # ... or to this for a graph drawn in bands (hundreds of nodes)
LAYOUTS = "graph_view_layouts"  # session: document digest -> (GraphLayout, data without statuses)

_component = st.components.v2.component("studio_run_graph", html="", css=CSS, js=SCRIPT)


def _digest(doc: dict[str, Any]) -> str:
    shape = (
        [(n.get("id"), n.get("label"), n.get("type"), n.get("position")) for n in doc.get("nodes", [])],
        [(e.get("source"), e.get("target"), e.get("when")) for e in doc.get("edges", [])],
    )
    return hashlib.sha1(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def drawing(doc: dict[str, Any]) -> dict[str, Any]:
    """The static part of the component's data for ``doc`` (laid out once per session and document)."""
    cache: dict[str, dict[str, Any]] = st.session_state.setdefault(LAYOUTS, {})
    sig = _digest(doc)
    if sig not in cache:
        if len(cache) > 8:
            cache.clear()
        laid: GraphLayout = layout(doc)
        cache[sig] = {
            "sig": sig,
            "nodes": [[p.id, p.label, p.type, p.x, p.y] for p in laid.nodes],
            "edges": [list(e) for e in laid.edges],
            "w": laid.width,
            "h": laid.height,
            "box": [BOX_W, BOX_H],
            "maxh": MAX_HEIGHT_LARGE_PX if laid.banded else MAX_HEIGHT_PX,
            "colours": {name: list(pair) for name, pair in COLOURS.items()},
        }
    return cache[sig]


def run_graph(
    doc: dict[str, Any],
    statuses: dict[str, str],
    *,
    key: str,
    selected: str | None = None,
    on_click: Any = None,
    args: tuple[Any, ...] = (),
) -> str | None:
    """Draw ``doc``'s graph coloured by ``statuses`` (node id -> a ``ui.status.COLOURS`` name).

    Returns the id of the node just clicked (for one rerun), else None; ``on_click(*args)`` is
    called first, as a widget callback (it can read the id with :func:`clicked`).
    """
    data = {**drawing(doc), "status": statuses, "selected": selected}
    result = _component(
        key=key,
        data=data,
        width="stretch",
        height="content",
        on_clicked_change=(lambda: on_click(*args)) if on_click is not None else (lambda: None),
    )
    value = getattr(result, "clicked", None)
    return str(value) if value else None


def clicked(key: str) -> str | None:
    """In a click callback: the node id the graph under ``key`` sent."""
    state = st.session_state.get(key)
    value = state.get("clicked") if isinstance(state, dict) else getattr(state, "clicked", None)
    return str(value) if value else None
