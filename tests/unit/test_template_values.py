"""What a template or expression gives: lazy Jinja results become lists, and
``{{- expr -}}`` (whitespace control) is still one expression that keeps its type.

Table-driven, against engine/templates.py directly and through small runs
(transform, output and map nodes), per the spec's "Values and templates".
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import load_workflow, run_workflow, templates
from engine.errors import RenderError
from engine.templates import as_list, compile_expression, compile_template

CONTEXT: dict[str, Any] = {
    "inputs": {"xs": [{"a": 1}, {"a": 2}, {"a": 3}], "d": {"b": 2, "a": 1}, "n": 3, "s": "abc"},
}

# ----------------------------------------------------------------------------- lazy results become lists

LAZY: list[tuple[str, Any]] = [
    ("inputs.xs | map(attribute='a')", [1, 2, 3]),
    ("inputs.xs | selectattr('a', 'odd') | map(attribute='a')", [1, 3]),
    ("[1, 2, 3, 4] | select('even')", [2, 4]),
    ("[1, 2, 3] | reject('even')", [1, 3]),
    ("inputs.xs | rejectattr('a', 'even')", [{"a": 1}, {"a": 3}]),
    ("range(3)", [0, 1, 2]),
    ("range(0)", []),
    ("inputs.d.keys()", ["b", "a"]),
    ("inputs.d.values()", [2, 1]),
    ("inputs.d.items()", [("b", 2), ("a", 1)]),
    ("[3, 1, 2] | reverse", [2, 1, 3]),
    ("[1, 1, 2] | unique", [1, 2]),
    ("[1, 2, 3, 4, 5] | batch(2)", [[1, 2], [3, 4], [5]]),
    # inside lists and dicts too
    ("{'names': inputs.xs | map(attribute='a')}", {"names": [1, 2, 3]}),
    ("[range(2), 'ab']", [[0, 1], "ab"]),
    ("[inputs.xs | map(attribute='a') | select('odd')]", [[1, 3]]),
]


@pytest.mark.parametrize(("expression", "expected"), LAZY)
def test_lazy_results_become_lists(expression: str, expected: Any) -> None:
    value = compile_expression(expression).render(CONTEXT)
    assert value == expected
    assert type(value) is type(expected)


NOT_LISTS: list[tuple[str, Any]] = [
    ("inputs.s", "abc"),
    ("inputs.d", {"b": 2, "a": 1}),
    ("inputs.n", 3),
    ("inputs.xs | map(attribute='a') | join(',')", "1,2,3"),
    ("inputs.xs | map(attribute='a') | sum", 6),
    ("inputs.xs | map(attribute='a') | list | length", 3),
    ("(1, 2)", (1, 2)),
]


@pytest.mark.parametrize(("expression", "expected"), NOT_LISTS)
def test_strings_mappings_and_scalars_stay_what_they_are(expression: str, expected: Any) -> None:
    value = compile_expression(expression).render(CONTEXT)
    assert value == expected and type(value) is type(expected)


AS_LIST: list[tuple[Any, Any]] = [
    ([1, 2], [1, 2]),
    ((1, 2), [1, 2]),
    (range(3), [0, 1, 2]),
    ((x for x in "ab"), ["a", "b"]),
    (iter([1]), [1]),
    ({"k": 1}.keys(), ["k"]),
    ({"k": 1}.items(), [("k", 1)]),
    ("abc", None),
    ({"k": 1}, None),
    (3, None),
    (None, None),
]


@pytest.mark.parametrize(("value", "expected"), AS_LIST)
def test_as_list(value: Any, expected: Any) -> None:
    assert as_list(value) == expected


@pytest.mark.parametrize(
    "expression", ["range(100)", "[1, 2, 3, 4, 5, 6] | select('odd') | list | reverse", "{'k': range(10)}"]
)
def test_a_lazy_value_past_the_limit_is_refused(expression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "MAX_ITEMS", 2)
    with pytest.raises(RenderError, match="more than 2 items"):
        compile_expression(expression).render(CONTEXT)


# ----------------------------------------------------------------------------- whitespace control

WHITESPACE: list[tuple[str, Any]] = [
    ("{{- inputs.n -}}", 3),
    ("{{-inputs.n-}}", 3),
    ("  {{- inputs.n }}\n", 3),
    ("{{ inputs.n -}}", 3),
    ("{{+ inputs.n }}", 3),
    ("{{- inputs.xs | map(attribute='a') -}}", [1, 2, 3]),
    ("{{- inputs.d -}}", {"b": 2, "a": 1}),
    ("{{- inputs.n > 2 -}}", True),
    ("{{ inputs.n - 1 }}", 2),
    ("{{ inputs.n-1 }}", 2),
    ("{{- inputs.n - 1 -}}", 2),
    ("{{ inputs.n -1 -}}", 2),
    ("{{ inputs.n--1 }}", 4),
    ("{{ inputs.n - -1 -}}", 4),
    ("{{- '-}}' -}}", "-}}"),
    ("{{- 'a -' ~ '+ b' -}}", "a -+ b"),
    # more than one expression or any text: a string, as before
    ("a {{- inputs.n -}} b", "a3b"),
    ("{{- inputs.n -}} {{ inputs.n }}", "33"),
    ("{{ inputs.n }} ", 3),
]


@pytest.mark.parametrize(("template", "expected"), WHITESPACE)
def test_whitespace_control_keeps_a_lone_expression_typed(template: str, expected: Any) -> None:
    value = compile_template(template).render(CONTEXT)
    assert value == expected and type(value) is type(expected)


# ----------------------------------------------------------------------------- through runs

INPUTS: dict[str, Any] = {
    "xs": {"type": "array", "default": [{"a": 1}, {"a": 2}, {"a": 3}]},
    "d": {"type": "object", "default": {"b": 2, "a": 1}},
    "n": {"type": "integer", "default": 3},
}


def _workflow(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "values",
        "inputs": INPUTS,
        "nodes": [
            {"id": "in", "type": "input"},
            node,
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.v.output }}"}},
        ],
        "edges": [{"source": "in", "target": "v"}, {"source": "v", "target": "out"}],
    }


def _map(items: str, expression: str = "item") -> dict[str, Any]:
    return {
        "id": "v",
        "type": "map",
        "config": {"items": items, "node": {"type": "transform", "config": {"expression": expression}}},
    }


RUNS_OK: list[tuple[dict[str, Any], Any]] = [
    ({"id": "v", "type": "transform", "config": {"expression": "inputs.xs | map(attribute='a')"}}, [1, 2, 3]),
    ({"id": "v", "type": "transform", "config": {"expression": "inputs.d.items()"}}, [["b", 2], ["a", 1]]),
    ({"id": "v", "type": "transform", "config": {"template": "{{ range(2) }}"}}, [0, 1]),
    (
        {"id": "v", "type": "output", "config": {"value": "{{ inputs.xs | map(attribute='a') | select('odd') }}"}},
        [1, 3],
    ),
    ({"id": "v", "type": "output", "config": {"value": {"keys": "{{ inputs.d.keys() }}"}}}, {"keys": ["b", "a"]}),
    ({"id": "v", "type": "output", "config": {"value": "{{- inputs.n -}}"}}, 3),
    ({"id": "v", "type": "output", "config": {"value": ["{{- inputs.n - 1 -}}", "{{ inputs.n -}}"]}}, [2, 3]),
    (_map("inputs.xs | map(attribute='a')", "item * 10"), [10, 20, 30]),
    (_map("range(3)", "index"), [0, 1, 2]),
    (_map("inputs.d.items()", "item[0]"), ["b", "a"]),
    (_map("inputs.d.values()"), [2, 1]),
    (_map("inputs.xs | selectattr('a', 'odd')", "item.a"), [1, 3]),
    (_map("(1, 2)"), [1, 2]),
    (_map("[]"), []),
]


@pytest.mark.parametrize(("node", "expected"), RUNS_OK)
async def test_runs_accept_lazy_values_and_whitespace_control(node: dict[str, Any], expected: Any) -> None:
    result = await run_workflow(_workflow(node), {})
    assert result.status == "completed", result.error
    assert result.result is not None and result.result["out"] == expected


RUNS_FAILING: list[tuple[dict[str, Any], str]] = [
    (_map("'abc'"), "config.items must give a list, got str"),
    (_map("inputs.d"), "config.items must give a list, got dict"),
    (_map("inputs.n"), "config.items must give a list, got int"),
]


@pytest.mark.parametrize(("node", "message"), RUNS_FAILING)
async def test_map_items_still_refuse_strings_and_mappings(node: dict[str, Any], message: str) -> None:
    result = await run_workflow(_workflow(node), {})
    assert result.status == "failed" and result.node_id == "v"
    assert result.error is not None and message in result.error


@pytest.mark.parametrize("value", ["{{- inputs.n -}}", "{{+ inputs.n -}}", "{{ inputs.n - 1 -}}", "x {{- inputs.n -}}"])
def test_whitespace_control_validates(value: str) -> None:
    load_workflow(_workflow({"id": "v", "type": "output", "config": {"value": value}}))
