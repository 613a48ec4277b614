"""Node-type icons that render without an emoji font (kiosks and servers often have none).

One table, two spellings of the same icon: a Material Symbols name for Streamlit text
(``:material/<name>:``) and the palette (Streamlit's own Material Symbols font), and a
Bootstrap Icons class for the canvas, whose iframe ships that font with streamlit-flow.
"""

from __future__ import annotations

from typing import NamedTuple


class NodeIcon(NamedTuple):
    material: str  # Material Symbols ligature name
    bootstrap: str  # Bootstrap Icons class (without the "bi-" prefix)


NODE_ICONS: dict[str, NodeIcon] = {
    "input": NodeIcon("input", "box-arrow-in-right"),
    "agent": NodeIcon("smart_toy", "robot"),
    "tool": NodeIcon("build", "tools"),
    "condition": NodeIcon("call_split", "signpost-split"),
    "transform": NodeIcon("data_object", "braces"),
    "map": NodeIcon("dataset", "grid-3x3-gap"),
    "output": NodeIcon("output", "box-arrow-right"),
}
UNKNOWN = NodeIcon("help", "question-circle")


def icon_of(node_type: object) -> NodeIcon:
    return NODE_ICONS.get(str(node_type), UNKNOWN)


def material(node_type: object) -> str:
    """``:material/<name>:`` for Streamlit Markdown and widget icons."""
    return f":material/{icon_of(node_type).material}:"


def canvas_html(node_type: object) -> str:
    """The icon inside a canvas node's (HTML-enabled) Markdown: our own fixed markup, never user text."""
    return f'<i class="bi bi-{icon_of(node_type).bootstrap}" aria-hidden="true"></i>'
