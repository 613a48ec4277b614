"""``**`` and ``*`` in templates are refused when their result would be huge.

Jinja2's sandbox limits attribute walks, not work: without the limits in
engine/templates.py an expression such as ``(3 ** 30000000) % 7`` or
``"a" * 10**10`` blocks the event loop for seconds (or runs out of memory),
and since it never yields, node and run timeouts cannot stop it. Table-driven:
each hostile expression must be refused fast with a message naming the cause;
each ordinary one must give the same value as before.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine import run_workflow
from engine.templates import RenderError, compile_expression, compile_template

FAST_S = 1.0  # every refusal must come well under this

REFUSED: list[tuple[str, str]] = [
    ("(3 ** 30000000) % 7", "exponent too large"),
    ("2 ** 100001", "exponent too large"),
    ("(-3) ** 10000000", "exponent too large"),
    ("(10 ** 20000) ** 10", "exponent too large"),
    ("2 ** (10 ** 30)", "exponent too large"),
    ("'a' * 10**10", "repetition too large: would make 10,000,000,000 characters"),
    ("10**10 * 'a'", "repetition too large: would make 10,000,000,000 characters"),
    ("[0] * 10**9", "repetition too large: would make 1,000,000,000 items"),
    ("10**9 * [0]", "repetition too large: would make 1,000,000,000 items"),
    ("(0, 1) * 10**8", "repetition too large: would make 200,000,000 items"),
    ("'ab' * 5000001", "repetition too large: would make 10,000,002 characters"),
    # few items, but every one of them is a long string
    ("[('x' * 10**6)] * 100", "repetition too large: would make more than 10,000,000 items and characters"),
    ("[{'k': 'x' * 10**6}] * 100", "repetition too large: would make more than 10,000,000 items and characters"),
    ("(2 ** 60000) * (2 ** 60000)", "product too large"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_huge_power_or_repetition_is_refused_fast(expression: str, message: str) -> None:
    compiled = compile_expression(expression)  # compiling must not fold the constant either
    started = time.perf_counter()
    with pytest.raises(RenderError) as caught:
        compiled.render({})
    assert time.perf_counter() - started < FAST_S
    assert message in str(caught.value)
    assert "refused by the sandbox" in str(caught.value)


TEMPLATES_REFUSED: list[tuple[str, str]] = [
    ("{{ 'a' * 10**10 }}", "repetition too large"),
    ("total: {{ (3 ** 30000000) % 7 }}", "exponent too large"),
    # squaring in a loop: each step is small, the result doubles in size every time
    (
        "{% set ns = namespace(x=3) %}{% for i in range(20) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x % 7 }}",
        "product too large",
    ),
]


@pytest.mark.parametrize(("template", "message"), TEMPLATES_REFUSED)
def test_templates_are_limited_too(template: str, message: str) -> None:
    compiled = compile_template(template)
    started = time.perf_counter()
    with pytest.raises(RenderError, match=message):
        compiled.render({})
    assert time.perf_counter() - started < FAST_S


ORDINARY: list[tuple[str, Any]] = [
    ("2 ** 10", 1024),
    ("2 ** -1", 0.5),
    ("(-2) ** 3", -8),
    ("1.5 ** 2", 2.25),
    ("2 ** 0.5 > 1.41", True),
    ("(-1) ** (10 ** 30)", 1),
    ("1 ** (10 ** 30)", 1),
    ("0 ** (10 ** 30)", 0),
    ("(2 ** 99999) % 7", 1),  # at the limit: 100,000 bits is allowed
    ("(2 ** 99999).bit_length()", 100000),  # (before the limits, constant folding made this fail to compile)
    ("6 * 7", 42),
    ("2.5 * 2", 5.0),
    ("-3 * 4", -12),
    ("True * 3", 3),
    ("'ab' * 3", "ababab"),
    ("3 * 'ab'", "ababab"),
    ("'x' * 0", ""),
    ("'x' * -5", ""),
    ("[1, 2] * 2", [1, 2, 1, 2]),
    ("2 * [1, 2]", [1, 2, 1, 2]),
    ("(1, 2) * 2", (1, 2, 1, 2)),
    ("[1] * -1", []),
    ("['abc'] * 3", ["abc", "abc", "abc"]),
    ("('a' * 10**7) | length", 10**7),  # at the limit: ten million characters is allowed
    ("inputs.n * inputs.f", 7.5),
    ("inputs.n ** 2", 9),
]


@pytest.mark.parametrize(("expression", "expected"), ORDINARY)
def test_ordinary_arithmetic_is_unchanged(expression: str, expected: Any) -> None:
    value = compile_expression(expression).render({"inputs": {"n": 3, "f": 2.5}})
    assert value == expected and type(value) is type(expected)


ORDINARY_ERRORS: list[tuple[str, str]] = [
    ("2.0 ** 100000", "OverflowError"),  # floats overflow on their own, fast
    ("'a' * 1.5", "TypeError"),
    ("missing * 2", "undefined variable"),
    ("2 ** missing", "undefined variable"),
]


@pytest.mark.parametrize(("expression", "message"), ORDINARY_ERRORS)
def test_ordinary_errors_still_surface(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(RenderError, match=message):
        compile_expression(expression).render({})
    assert time.perf_counter() - started < FAST_S


def _workflow(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "limits",
        "settings": {"timeout_s": 30},
        "nodes": [
            {"id": "in", "type": "input"},
            node,
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.big.output }}"}},
        ],
        "edges": [{"source": "in", "target": "big"}, {"source": "big", "target": "out"}],
    }


RUNS: list[tuple[dict[str, Any], str]] = [
    ({"id": "big", "type": "transform", "timeout_s": 5, "config": {"expression": "(3 ** 30000000) % 7"}},
     "exponent too large"),
    ({"id": "big", "type": "transform", "config": {"expression": "'a' * 10**10"}},
     "repetition too large: would make 10,000,000,000 characters"),
    ({"id": "big", "type": "transform", "config": {"template": "{{ [0] * 10**9 }}"}},
     "repetition too large: would make 1,000,000,000 items"),
    ({"id": "big", "type": "output", "config": {"value": {"x": "{{ 'a' * 10**10 }}"}}},
     "repetition too large"),
    ({"id": "big", "type": "map", "config": {"items": "[1, 2]", "node": {"type": "transform", "config": {"expression": "item ** (10 ** 8)"}}}},
     "exponent too large"),
]


@pytest.mark.parametrize(("node", "message"), RUNS)
async def test_a_run_with_a_huge_expression_fails_fast_with_the_reason(node: dict[str, Any], message: str) -> None:
    started = time.perf_counter()
    result = await run_workflow(_workflow(node), {})
    elapsed = time.perf_counter() - started
    assert elapsed < FAST_S, f"the run took {elapsed:.1f} s"
    assert result.status == "failed"
    assert result.node_id == "big"
    assert result.error is not None and message in result.error
    failed = [e for e in result.events if e.type == "node.failed" and e.node_id == "big"]
    assert failed and message in str(failed[-1].data)
