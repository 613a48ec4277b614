"""The Run page graph's layout (ui.graph_layout): authors' places kept, long graphs wrapped into bands."""

from __future__ import annotations

from tests.browser.studio import branch_workflow, chain_workflow
from ui.graph_layout import BOX_H, BOX_W, layers, layers_per_band, layout


def overlaps(nodes: list) -> int:
    boxes = sorted((n.x, n.y) for n in nodes)
    count = 0
    for i, (x, y) in enumerate(boxes):
        for x2, y2 in boxes[i + 1 : i + 40]:
            if abs(x - x2) < BOX_W and abs(y - y2) < BOX_H:
                count += 1
    return count


def test_a_small_graph_keeps_the_builders_places_shifted_to_the_origin() -> None:
    doc = branch_workflow()
    drawn = layout(doc)
    places = {n.id: (n.x, n.y) for n in drawn.nodes}
    assert places["start"] == (0, 100) and places["trim"] == (660, 0) and places["result"] == (1100, 100)
    assert drawn.width == 1100 + BOX_W and drawn.height == 200 + BOX_H
    assert not drawn.banded
    assert ("route", "trim", "long") in drawn.edges and ("start", "draft", "") in drawn.edges
    assert {n.label for n in drawn.nodes} >= {"Draft", "Long?", "start"}  # a node without label shows its id


def test_nodes_without_places_get_layers_left_to_right() -> None:
    doc = branch_workflow()
    for node in doc["nodes"]:
        node.pop("position")
    drawn = {n.id: n for n in layout(doc).nodes}
    xs = [drawn[i].x for i in ("start", "draft", "route", "trim", "join", "result")]
    assert xs == sorted(xs) and len(set(xs)) == 6
    assert drawn["trim"].x == drawn["keep"].x and drawn["trim"].y != drawn["keep"].y


def test_a_2000_node_chain_is_wrapped_into_bands_that_fill_a_wide_box_without_overlaps() -> None:
    doc = chain_workflow("big", 1998)
    drawn = layout(doc, box=(1350.0, 760.0))
    assert len(drawn.nodes) == 2000 and drawn.banded
    aspect = drawn.width / drawn.height
    assert 0.8 < aspect < 4, aspect  # not a 480,000-pixel line
    assert overlaps(drawn.nodes) == 0
    scale = min(1350 / drawn.width, 760 / drawn.height)
    assert scale > 0.1  # each box at least 18 px wide when fitted


def test_layers_per_band_is_all_layers_when_they_fit_and_fewer_for_a_long_chain() -> None:
    assert layers_per_band(6, 3) == 6
    assert layers_per_band(1, 1) == 1
    assert 20 < layers_per_band(2000, 1) < 80


def test_long_labels_are_shortened_and_unknown_edges_dropped() -> None:
    doc = {
        "nodes": [{"id": "a", "label": "x" * 80, "type": "agent"}, {"id": "b", "type": "output"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "gone"}],
    }
    drawn = layout(doc)
    assert len(drawn.nodes[0].label) <= 26 and drawn.nodes[0].label.endswith("…")
    assert drawn.edges == [("a", "b", "")]
    assert layout({"nodes": [], "edges": []}).nodes == []


def test_layers_ignore_a_loops_back_edge_and_take_the_longest_path() -> None:
    ids = ["start", "a", "b", "c", "end"]
    edges = [
        ("start", "a", ""),
        ("a", "b", ""),
        ("b", "a", "again"),
        ("b", "end", ""),
        ("start", "c", ""),
        ("c", "end", ""),
    ]
    assert layers(ids, edges, "start") == {"start": 0, "a": 1, "b": 2, "c": 1, "end": 3}


def test_layout_of_2000_nodes_is_quick() -> None:
    import time

    doc = chain_workflow("big", 1998)
    started = time.perf_counter()
    layout(doc)
    assert time.perf_counter() - started < 0.5  # (about 20 ms; quadratic work would take seconds)
