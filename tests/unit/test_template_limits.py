"""Operations in templates are refused when their result would be huge.

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
    # joins: + and ~ of two big values (each one allowed on its own)
    ("('x' * 6000000) + ('y' * 6000000)", "join too large: would make 12,000,000 characters"),
    ("[0] * 5000000 + [1] * 5000000 + [2]", "join too large: would make 10,000,001 items"),
    ("('x' * 6000000) ~ ('y' * 6000000)", "join too large: would make 12,000,000 characters"),
    # widths and padding: a tiny value, a huge result
    ("'%999999999d' % 1", "printf width too large: would make 999,999,999 characters"),
    ("'%.999999999f' % 1.5", "printf width too large"),
    ("'%*d' % (999999999, 1)", "printf width too large"),
    ("'%(a)999999999s' % {'a': 1}", "printf width too large"),
    ("'%999999999d' | format(1)", "printf width too large"),
    ("'{:>999999999}'.format(1)", "format width too large: would make 999,999,999 characters"),
    ("'{:{}}'.format(1, 999999999)", "format width too large"),
    ("'{x:{w}}'.format_map({'x': 1, 'w': 999999999})", "format width too large"),
    ("'x'.ljust(999999999)", "ljust too large: would make 999,999,999 characters"),
    ("'x'.rjust(width=999999999)", "rjust too large"),
    ("'x'.center(999999999)", "center too large"),
    ("'1'.zfill(999999999)", "zfill too large"),
    ("('\t' * 1000).expandtabs(100000)", "expandtabs too large: would make 100,001,000 characters"),
    ("'x' | center(999999999)", "center too large"),
    ("'a\nb' | indent(999999999)", "indent too large: would make 1,999,999,998 characters"),
    ("'a\nb' | indent('x' * 9000000)", "indent too large"),
    # replace and join: the new text or the separator repeated many times
    ("('a' * 10000).replace('', 'b' * 10000)", "replace too large: would make 100,020,000 characters"),
    ("('a' * 10000) | replace('a', 'b' * 10000)", "replace too large: would make 100,000,000 characters"),
    ("('x' * 100000).join(['a'] * 1000)", "join too large: would make 99,900,000 characters"),
    ("(['a'] * 1000) | join('x' * 100000)", "join too large: would make 99,900,000 characters"),
    # filters that make items from a count
    ("[1] | batch(999999999, 0) | list", "batch too large: would make 999,999,999 items"),
    ("[1] | slice(999999999) | list", "slice too large: would make 999,999,999 items"),
    ("lipsum(100000)", "lipsum too large"),
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
    # doubling in a loop: every step is a join of two values the limits allowed
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "join too large: would make 16,777,216 characters",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        "join too large: would make 16,777,216 characters",
    ),
    (
        "{% set ns = namespace(l=[0]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l }}",
        "join too large: would make 16,777,216 items",
    ),
    # the output itself: the same big value written many times, in the template or in a set block
    (
        "{% set big = 'x' * 1000000 %}{% for i in range(100) %}{{ big }}{% endfor %}",
        "output too large: would make 100,000,000 characters",
    ),
    (
        "{% set big = 'x' * 1000000 %}{% set b %}{% for i in range(100) %}{{ big }}{% endfor %}{% endset %}{{ b|length }}",
        "output too large: would make 100,000,000 characters",
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
    ("1 + 2", 3),
    ("0.5 + 0.25", 0.75),
    ("'a' + 'b'", "ab"),
    ("[1] + [2]", [1, 2]),
    ("(('x' * 5000000) + ('y' * 5000000)) | length", 10**7),  # at the limit
    ("1 ~ 'b' ~ 2.5", "1b2.5"),
    ("10 % 3", 1),
    ("7.5 % 2", 1.5),
    ("'Hello %s' % inputs.name", "Hello Ada"),
    ("'%5.2f|%-4d|%%' % (3.14159, 7)", " 3.14|7   |%"),
    ("'%(n)03d' % {'n': 7}", "007"),
    ("'%s-%s' | format(1, 2)", "1-2"),
    ("'{:>6}|{:,}|{:08.3f}'.format('x', 1234567, 3.14159)", "     x|1,234,567|0003.142"),
    ("'{0:{1}}|'.format('x', 3)", "x  |"),
    ("'{n:>{w}}'.format_map({'n': 1, 'w': 3})", "  1"),
    ("'x'.ljust(3) ~ '|' ~ '7'.zfill(3) ~ '|' ~ 'a\tb'.expandtabs(2)", "x  |007|a b"),
    ("'a,b'.replace(',', ', ')", "a, b"),
    ("'ab'.replace('', '-')", "-a-b-"),
    ("', '.join(['a', 'b'])", "a, b"),
    ("'x' | center(5)", "  x  "),
    ("'a\nb' | indent(2)", "a\n  b"),
    ("'aXbX' | replace('X', 'yy', 1)", "ayybX"),
    ("[1, 2] | join(',')", "1,2"),
    ("[1, 2, 3] | batch(2, 0) | list", [[1, 2], [3, 0]]),
    ("[1, 2, 3] | slice(2) | list", [[1, 2], [3]]),
    ("lipsum(2, html=False) | length > 10", True),
]


@pytest.mark.parametrize(("expression", "expected"), ORDINARY)
def test_ordinary_arithmetic_is_unchanged(expression: str, expected: Any) -> None:
    value = compile_expression(expression).render({"inputs": {"n": 3, "f": 2.5, "name": "Ada"}})
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
