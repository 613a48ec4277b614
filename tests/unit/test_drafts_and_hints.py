"""Engine parts behind the Builder's "never lose work" and "fewer steps" (issue 13):
the drafts store API (any JSON document, invalid ones too), the "leads nowhere" warning
(distinct from validation problems), and the ``when`` values read from a condition's expression."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine import load_workflow
from engine.lint import workflow_warnings
from engine.literals import condition_literals
from engine.store import Store

# --- drafts -----------------------------------------------------------------------------------------------

INVALID: dict[str, Any] = {"format": "workflow/v1", "name": "", "nodes": [{"id": "a b", "type": "nope"}], "edges": "x"}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = Store(f"sqlite:///{tmp_path / 'studio.db'}")
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("key", "document", "source"),
    [
        ("0123456789ab", {"format": "workflow/v1", "name": "ok", "nodes": [], "edges": []}, "saved:0123456789ab"),
        ("new:5f1c", INVALID, "import"),
        ("new:ünï", {"name": "ünïcode ✓", "nested": {"deep": [1, 2.5, None, True]}}, "example:x.json"),
    ],
)
def test_a_draft_round_trips_exactly_also_when_invalid(
    store: Store, key: str, document: dict[str, Any], source: str
) -> None:
    assert store.get_draft(key) is None
    store.save_draft(key, document, source=source)
    row = store.get_draft(key)
    assert row is not None and row.document == document and row.source == source and row.updated_at > 0
    changed = {**document, "name": "second"}
    store.save_draft(key, changed, source=source)
    assert store.get_draft(key).document == changed  # type: ignore[union-attr]
    assert [d.key for d in store.list_drafts()] == [key]
    assert store.drop_draft(key) is True
    assert store.get_draft(key) is None and store.drop_draft(key) is False


def test_drafts_survive_reopening_and_an_old_database_gets_the_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studio.db'}"
    first = Store(url)
    first.save_draft("new:1", INVALID)
    first.close()
    with sqlite3.connect(tmp_path / "studio.db") as conn:  # a database made before drafts existed
        conn.execute("DROP TABLE drafts")
        conn.execute("DELETE FROM studio_meta WHERE key = 'migration:0003_drafts'")
    again = Store(url)
    try:
        assert again.get_draft("new:1") is None
        again.save_draft("new:1", INVALID)
        assert again.get_draft("new:1").document == INVALID  # type: ignore[union-attr]
    finally:
        again.close()


# --- "leads nowhere" warnings -------------------------------------------------------------------------------


def _doc(nodes: list[tuple[str, str]], edges: list[tuple[str, str] | tuple[str, str, str]]) -> dict[str, Any]:
    configs = {
        "input": None,
        "transform": {"expression": "1"},
        "condition": {"expression": "'a'"},
        "output": {"value": "{{ 1 }}"},
    }
    return {
        "format": "workflow/v1",
        "name": "w",
        "nodes": [{"id": i, "type": t, **({"config": configs[t]} if configs[t] is not None else {})} for i, t in nodes],
        "edges": [{"source": e[0], "target": e[1], **({"when": e[2]} if len(e) == 3 else {})} for e in edges],
    }


@pytest.mark.parametrize(
    ("nodes", "edges", "warned"),
    [
        ([("s", "input"), ("o", "output")], [("s", "o")], []),
        ([("s", "input"), ("t", "transform"), ("o", "output")], [("s", "o"), ("s", "t")], ["t"]),
        (
            [("s", "input"), ("c", "condition"), ("a", "transform"), ("b", "transform"), ("o", "output")],
            [("s", "c"), ("c", "a", "a"), ("c", "b", "default"), ("a", "o")],
            ["b"],
        ),
        (
            [("s", "input"), ("t", "transform"), ("u", "transform"), ("o", "output")],
            [("s", "t"), ("t", "u"), ("s", "o")],
            ["u"],  # reported where the branch ends, once
        ),
        ([("s", "input"), ("t", "transform")], [("s", "t")], ["nodes"]),  # no output at all
    ],
)
def test_a_branch_reaching_no_output_is_a_warning_not_a_problem(
    nodes: list[tuple[str, str]], edges: list[Any], warned: list[str]
) -> None:
    workflow = load_workflow(_doc(nodes, edges))  # loads: a warning never makes a document invalid
    found = workflow_warnings(workflow)
    assert [w.where for w in found] == [f"node '{n}'" if n != "nodes" else n for n in warned]
    assert all(("leads nowhere" in w.message) or ("no output node" in w.message) for w in found)


# --- when values from a condition's expression ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("nodes.a.output == 'long'", ["long"]),
        ("'long' == nodes.a.output or nodes.a.output == 'short'", ["long", "short"]),
        ("nodes.a.output in ['a', 'b']", ["a", "b"]),
        ("nodes.a.output not in ('p', 1.5)", ["p", "1.5"]),
        ("'long' if inputs.x | length > 100 else 'short'", ["long", "short"]),
        ("nodes.a.output == true", ["true"]),
        ("nodes.a.output == none", ["null"]),
        ("nodes.a.output != 3", ["3"]),
        ("nodes.a.output > 3", []),  # an order comparison says nothing about the value
        ("nodes.a.output in 'abc'", []),  # a substring test
        ("nodes.a.output ==", []),  # does not parse: no values, validation says why
        ("", []),
        ("nodes.a.output == 'x' and nodes.a.output == 'x'", ["x"]),
        ("__import__('os').system('false') == 'x'", ["x"]),  # parsed, never run
    ],
)
def test_when_values_come_from_the_parsed_expression(expression: str, values: list[str]) -> None:
    assert condition_literals(expression) == values
