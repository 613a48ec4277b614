"""Workflow documents <-> the streamlit-flow canvas.

The document (workflow/v1 as a dict) is the truth; the canvas state is drawn
from it and user edits on the canvas (moves, new edges, deletions) are folded
back into it. Node content is Markdown, so labels are escaped. Every node
gets its own fresh ``style`` dict (streamlit-flow shares the default one).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict, deque
from typing import Any

from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.state import StreamlitFlowState

from ui.icons import canvas_html
from ui.status import COLOURS
from ui.text import md_escape

# streamlit-flow accepts a state from Python only when its `timestamp` is not older than the browser's own
# stamp, which the browser takes from *its* clock each time it accepts a state or reports one. A state
# drawn by Python is stamped FUTURE_STAMP_MS + its redraw number, so it is never older than any browser
# stamp, whatever either clock says; the redraw number also rides in every node's data, so a canvas
# report can tell which drawing it was made from (see `drawn_from`).
FUTURE_STAMP_MS = 4_000_000_000_000  # year 2096

X_STEP, Y_STEP = 240, 120
NODE_MIN_WIDTH = 150


def edge_id(edge: dict[str, Any]) -> str:
    when = edge.get("when")
    return f"{edge['source']}->{edge['target']}" + (f"[{when}]" if when is not None else "")


def auto_positions(doc: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """A left-to-right layered layout (longest path from the input), ignoring back-edges."""
    ids = [n["id"] for n in doc.get("nodes", [])]
    succ: dict[str, list[str]] = defaultdict(list)
    for e in doc.get("edges", []):
        if e.get("source") in ids and e.get("target") in ids:
            succ[e["source"]].append(e["target"])
    start = next((n["id"] for n in doc.get("nodes", []) if n.get("type") == "input"), ids[0] if ids else None)
    depth: dict[str, int] = {}
    if start is not None:
        depth[start] = 0
        order = deque([start])
        seen_edges: set[tuple[str, str]] = set()
        while order:
            u = order.popleft()
            for v in succ[u]:
                if (u, v) in seen_edges or depth.get(v, -1) >= depth[u] + 1 or depth[u] + 1 > len(ids):
                    continue
                seen_edges.add((u, v))
                depth[v] = depth[u] + 1
                order.append(v)
    for node_id in ids:
        depth.setdefault(node_id, max(depth.values(), default=-1) + 1)
    rows: dict[int, int] = defaultdict(int)
    positions: dict[str, tuple[float, float]] = {}
    for node_id in ids:
        layer = depth[node_id]
        positions[node_id] = (layer * X_STEP, rows[layer] * Y_STEP)
        rows[layer] += 1
    return positions


def node_content(node: dict[str, Any], status: str | None = None) -> str:
    label = node.get("label") or node["id"]
    icon = canvas_html(node.get("type"))
    suffix = f" · {status}" if status and status != "pending" else ""
    return f"{icon} **{md_escape(label)}**  \n`{md_escape(node.get('type', '?'))}`{md_escape(suffix)}"


def node_style(status: str | None) -> dict[str, Any]:
    background, border = COLOURS.get(status or "pending", COLOURS["pending"])
    return {
        "background": background,
        "border": f"2px solid {border}",
        "borderRadius": "8px",
        "padding": "6px",
        "width": "auto",
        "minWidth": f"{NODE_MIN_WIDTH}px",  # readable when a whole graph is fitted in the view
        "maxWidth": "280px",
    }


def to_state(
    doc: dict[str, Any],
    *,
    statuses: dict[str, str] | None = None,
    editable: bool = True,
    selected: str | None = None,
    redraw: int = 0,
) -> StreamlitFlowState:
    """The canvas for a document; ``statuses`` colours nodes (run view); ``redraw`` numbers the drawing."""
    statuses = statuses or {}
    fallback = auto_positions(doc)
    nodes = []
    for node in doc.get("nodes", []):
        x, y = coordinates(node.get("position"), fallback[node["id"]])
        status = statuses.get(node["id"]) if statuses else None
        kind = "input" if node.get("type") == "input" else "output" if node.get("type") == "output" else "default"
        nodes.append(
            StreamlitFlowNode(
                id=node["id"],
                pos=(x, y),
                data={"content": node_content(node, status), "redraw": redraw},
                node_type=kind,
                source_position="right",
                target_position="left",
                selectable=True,
                connectable=editable,
                draggable=editable,
                deletable=editable and node.get("type") != "input",
                selected=node["id"] == selected,
                style=node_style(status),
            )
        )
    edges = []
    for edge in doc.get("edges", []):
        when = edge.get("when")
        edges.append(
            StreamlitFlowEdge(
                id=edge_id(edge),
                source=edge["source"],
                target=edge["target"],
                edge_type="smoothstep",
                marker_end={"type": "arrowclosed"},
                label=str(when) if when is not None else "",
                label_show_bg=when is not None,
                deletable=editable,
                focusable=True,
                animated=statuses.get(edge["source"]) == "running" if statuses else False,
                style={},
                label_style={},
                label_bg_style={},
                marker_start={},
            )
        )
    return StreamlitFlowState(nodes=nodes, edges=edges, selected_id=selected, timestamp=FUTURE_STAMP_MS + redraw)


def coordinates(position: Any, fallback: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """A node's place: its ``position`` when that holds finite numbers, else (per axis) its auto-layout place.
    Imported files can hold anything there; validation lists the problem, the canvas still draws."""
    place = position if isinstance(position, dict) else {}
    return tuple(  # type: ignore[return-value]
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else float(default)
        for value, default in ((place.get("x"), fallback[0]), (place.get("y"), fallback[1]))
    )


def drawn_from(report: dict[str, Any]) -> int | None:
    """The redraw number a canvas report was made from (None when its nodes carry none)."""
    numbers = [
        n["data"]["redraw"]
        for n in report.get("nodes") or []
        if isinstance(n, dict) and isinstance(n.get("data"), dict) and isinstance(n["data"].get("redraw"), int)
    ]
    return max(numbers) if numbers else None


def merge_canvas(doc: dict[str, Any], state: StreamlitFlowState, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fold canvas edits into a copy of ``doc``: positions, deleted nodes/edges, new edges.

    ``base`` is the document the canvas was drawn from. What the canvas changed is what differs between
    it and ``base``, so a node or edge added to ``doc`` after that drawing (by a callback whose redraw has
    not reached the browser yet) is kept, not taken for deleted. Without ``base``, ``doc`` is the base.
    """
    base = doc if base is None else base
    new = copy.deepcopy(doc)
    on_canvas = {n.id: n for n in state.nodes}
    removed = {n["id"] for n in base.get("nodes", []) if n["id"] not in on_canvas and n.get("type") != "input"}
    new["nodes"] = [n for n in new.get("nodes", []) if n["id"] not in removed]
    for node in new["nodes"]:
        drawn = on_canvas.get(node["id"])
        if drawn is not None:
            node["position"] = {"x": round(float(drawn.position["x"]), 1), "y": round(float(drawn.position["y"]), 1)}
    kept = {n["id"] for n in new["nodes"]}
    drawn_edges = {(e.source, e.target) for e in state.edges}
    base_edges = {(e["source"], e["target"]) for e in base.get("edges", [])}
    edges = [
        e
        for e in new.get("edges", [])
        if ((e["source"], e["target"]) in drawn_edges or (e["source"], e["target"]) not in base_edges)
        and e["source"] in kept
        and e["target"] in kept
    ]
    known = {(e["source"], e["target"]) for e in edges}
    for e in state.edges:
        pair = (e.source, e.target)
        if pair not in known and pair not in base_edges and e.source in kept and e.target in kept:
            edges.append({"source": e.source, "target": e.target})
            known.add(pair)
    new["edges"] = edges
    return new


def same_graph(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two documents draw the same canvas (ids, types, labels, edges, positions)."""

    def shape(doc: dict[str, Any]) -> Any:
        return (
            [(n["id"], n.get("type"), n.get("label"), n.get("position")) for n in doc.get("nodes", [])],
            sorted(edge_id(e) for e in doc.get("edges", [])),
        )

    return shape(a) == shape(b)
