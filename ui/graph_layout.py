"""Where a run's graph puts its nodes: plain Python, no Streamlit, so it is unit-tested and cheap.

The Run and History pages draw a run's graph read-only (``ui.graph_view``). A small graph
keeps the places the author gave its nodes in the Builder (so it looks the same there); a
large one, or one with nodes without a place, gets a left-to-right layered layout
(:func:`layers`: longest path from the sources, back-edges of loops ignored). A long layered graph (a chain of
2,000 nodes is 2,000 layers) would be a thin line when fitted into the page, so its layers
are wrapped into bands, stacked top to bottom, with as many layers per band as makes the
drawing's scale largest in a page-wide box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ui.flow import coordinates

BOX_W, BOX_H = 180, 56  # a node's box in layout units (pixels at scale 1)
GAP_X, GAP_Y = 60, 40  # between boxes in a layered layout
KEEP_PLACES_UP_TO = 100  # nodes: up to this many, the author's places are kept when every node has one
LABEL_CHARS = 26
READABLE_SCALE = 0.6  # a layered drawing this large or larger in the page's box is not wrapped


@dataclass(frozen=True, slots=True)
class Placed:
    """One node as drawn: its top-left corner in layout units."""

    id: str
    label: str
    type: str
    x: float
    y: float


@dataclass(slots=True)
class GraphLayout:
    """Nodes with their places, edges (source, target, label), and the drawing's size."""

    nodes: list[Placed] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    banded: bool = False


def short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def layers_per_band(layers: int, rows: int, box: tuple[float, float] = (1350.0, 720.0)) -> int:
    """How many layers one band holds: all of them while the unwrapped drawing fits ``box`` at a readable
    scale (``READABLE_SCALE``), else as many as make the whole drawing's scale in ``box`` largest."""
    step_x, band_h = BOX_W + GAP_X, rows * (BOX_H + GAP_Y) + GAP_Y

    def scale(per_band: int) -> float:
        return min(1.0, box[0] / (per_band * step_x), box[1] / (math.ceil(layers / per_band) * band_h))

    if layers <= 1 or scale(layers) >= READABLE_SCALE:
        return max(1, layers)
    best, best_scale = layers, scale(layers)
    for per_band in range(layers - 1, 0, -1):  # ties: the fewer bands
        if scale(per_band) > best_scale + 1e-12:
            best, best_scale = per_band, scale(per_band)
    return best


def layers(ids: list[str], edges: list[tuple[str, str, str]], start: str | None) -> dict[str, int]:
    """Each node's layer: the longest path to it from the sources, in linear time. Back-edges (found by a
    depth-first search from ``start``, then from every node not reached) are left out, so loops do not count."""
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for source, target, _ in edges:
        succ[source].append(target)
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    back: set[tuple[str, str]] = set()
    roots = ([start] if start in succ else []) + ids
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    indegree = dict.fromkeys(ids, 0)
    for source in ids:
        for target in succ[source]:
            if (source, target) not in back:
                indegree[target] += 1
    layer = dict.fromkeys(ids, 0)
    ready = [i for i in ids if indegree[i] == 0]
    while ready:
        node = ready.pop()
        for target in succ[node]:
            if (node, target) in back:
                continue
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return layer


def layout(doc: dict[str, Any], *, box: tuple[float, float] = (1350.0, 720.0)) -> GraphLayout:
    """The drawing of ``doc``'s nodes and edges (see the module docstring for the rule)."""
    nodes = [n for n in doc.get("nodes", []) if isinstance(n, dict) and isinstance(n.get("id"), str)]
    ids = {n["id"] for n in nodes}
    edges = [
        (e["source"], e["target"], "" if e.get("when") is None else str(e["when"]))
        for e in doc.get("edges", [])
        if isinstance(e, dict) and e.get("source") in ids and e.get("target") in ids
    ]
    if not nodes:
        return GraphLayout(edges=edges)
    placed_by_author = len(nodes) <= KEEP_PLACES_UP_TO and all(isinstance(n.get("position"), dict) for n in nodes)
    places: dict[str, tuple[float, float]]
    banded = False
    if placed_by_author:
        places = {n["id"]: coordinates(n.get("position")) for n in nodes}
    else:
        order = list(dict.fromkeys(n["id"] for n in nodes))
        start = next((n["id"] for n in nodes if n.get("type") == "input"), None)
        layer_of = layers(order, edges, start)
        row_of: dict[str, int] = {}
        used: dict[int, int] = {}
        for node_id in order:  # rows in document order within each layer
            row_of[node_id] = used.get(layer_of[node_id], 0)
            used[layer_of[node_id]] = row_of[node_id] + 1
        count = max(layer_of.values()) + 1
        rows = max(used.values())
        per_band = layers_per_band(count, rows, box)
        banded = per_band < count
        band_h = rows * (BOX_H + GAP_Y) + GAP_Y
        places = {
            i: (
                (layer_of[i] % per_band) * (BOX_W + GAP_X),
                (layer_of[i] // per_band) * band_h + row_of[i] * (BOX_H + GAP_Y),
            )
            for i in order
        }
    min_x = min(x for x, _ in places.values())
    min_y = min(y for _, y in places.values())
    drawn = [
        Placed(
            id=n["id"],
            label=short(str(n.get("label") or n["id"])),
            type=str(n.get("type", "?")),
            x=round(places[n["id"]][0] - min_x, 1),
            y=round(places[n["id"]][1] - min_y, 1),
        )
        for n in nodes
    ]
    width = max(p.x for p in drawn) + BOX_W
    height = max(p.y for p in drawn) + BOX_H
    return GraphLayout(nodes=drawn, edges=edges, width=width, height=height, banded=banded)
