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
from engine.errors import RenderError
from engine.templates import compile_expression, compile_template

FAST_S = 1.0  # every refusal must come well under this


@pytest.fixture(autouse=True)
def no_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The size checks on their own: on a busy machine, building a value near the cap can take long enough
    for the render time limit (tests/unit/test_template_budget.py) to stop the template first."""
    from engine import template_budget

    monkeypatch.setattr(template_budget, "RENDER_TIME_LIMIT_S", 30.0)

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
    ("('\t' * 1000).encode('utf-8').expandtabs(100000)", "expandtabs too large: would make 100,001,000 characters"),
    ("'x' | center(999999999)", "center too large"),
    ("'a\nb' | indent(999999999)", "indent too large: would make 2,000,000,001 characters"),
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
        "{% set big = 'x' * 1000000 %}"
        "{% set b %}{% for i in range(100) %}{{ big }}{% endfor %}{% endset %}{{ b|length }}",
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
    ("'a\tb'.encode('utf-8').expandtabs(2)", b"a b"),  # bytes count their tabs as bytes
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
    (
        {"id": "big", "type": "transform", "timeout_s": 5, "config": {"expression": "(3 ** 30000000) % 7"}},
        "exponent too large",
    ),
    (
        {"id": "big", "type": "transform", "config": {"expression": "'a' * 10**10"}},
        "repetition too large: would make 10,000,000,000 characters",
    ),
    (
        {"id": "big", "type": "transform", "config": {"template": "{{ [0] * 10**9 }}"}},
        "repetition too large: would make 1,000,000,000 items",
    ),
    ({"id": "big", "type": "output", "config": {"value": {"x": "{{ 'a' * 10**10 }}"}}}, "repetition too large"),
    (
        {
            "id": "big",
            "type": "map",
            "config": {"items": "[1, 2]", "node": {"type": "transform", "config": {"expression": "item ** (10 ** 8)"}}},
        },
        "exponent too large",
    ),
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


# ----------------------------------------------------------------------------- every way a template writes text

BIG = "{% set big = 'x' * 9000000 %}"
REFS = BIG + "{% set ns = namespace(l=[]) %}{% for i in range(16) %}{% set ns.l = ns.l + [big] %}{% endfor %}"
SIZE_MESSAGE = "(the limit is 10,000,000)"

# (kind, source, what the message names). Every one is refused by a size check before it is built (or, for a
# string at most a few times the cap, right after): never by the render time limit, never after running long.
OUTPUT_REFUSED: list[tuple[str, str, str]] = [
    # the cases of issue 12 §2
    ("expression", "'{0:{1}}'.format('a', '100000000')", "format width too large: would make 100,000,000"),
    ("expression", "('\"' * 3000000) | tojson | tojson", "tojson too large"),
    (
        "template",
        "{% set ns = namespace(s='<\"a\\'&>') %}{% for i in range(24) %}{% set ns.s = ns.s | tojson %}"
        "{% endfor %}{{ ns.s | length }}",
        "tojson too large",
    ),
    ("expression", "range(10) | list | tojson(indent=20000000)", "tojson indent too large: would make 20,000,000"),
    ("expression", "range(10) | list | tojson(indent=2000000)", "tojson too large"),
    ("expression", "'ab cd ef' | wordwrap(1, wrapstring='b' * 9000000)", "wordwrap too large"),
    ("template", REFS + "{{ ns.l | join }}", "join too large"),
    ("template", REFS + "{{ ns.l | join(',') }}", "join too large"),
    ("template", REFS + "{{ ''.join(ns.l) }}", "join too large"),
    ("expression", "('\U0001f600' * 900000) | urlencode", "urlencode too large: would make 10,800,000"),
    ("expression", "('\U0001f600' * 5000000) | urlencode", "urlencode too large: would make 60,000,000"),
    ("expression", "{'k': '\U0001f600' * 900000} | urlencode", "urlencode too large"),
    ("template", REFS + "{{ ns.l }}", "too large: would write more than 10,000,000"),  # a lone {{ }}: its JSON
    ("template", REFS + "x{{ ns.l }}", "output too large: would write more than 10,000,000"),
    ("template", REFS + "{{ ns.l ~ '' }}", "join too large: would write more than 10,000,000"),
    ("template", "{{ [inputs.s9, inputs.s9] }}", "value too large: would write more than 10,000,000"),
    ("template", "  {{- {'a': [inputs.s9], 'b': inputs.s9} -}}  ", "value too large"),
    ("expression", "[inputs.s9, inputs.s9]", "value too large"),
    ("expression", "[inputs.n] * 3000", "repetition too large"),  # 4,215 digits each
    ("expression", "['x' * 6000000, 'y' * 6000000]", "value too large: would write more than 10,000,000"),
    ("expression", "{'a': 'x' * 6000000, 'b': 'y' * 6000000}", "value too large"),
    (
        "template",
        "{% set ns = namespace(l=[]) %}{% for i in range(3000) %}{% set ns.l = ns.l + [inputs.n] %}{% endfor %}"
        "{{ ns.l | length }}{{ ns.l }}",
        "output too large",
    ),
    # format widths and their arguments
    ("expression", "'{0:{1}{2}}'.format('a', 9, '0000000')", "format width too large: would make 90,000,000"),
    ("expression", "'{:.{}f}'.format(1.5, '99999999')", "format width too large"),
    ("expression", "'{0:{1[0]}}'.format('a', [999999999])", "format width too large"),
    ("expression", "'{0:{1[w]}}'.format('a', {'w': 999999999})", "format width too large"),
    ("template", "{% set ns = namespace(w=999999999) %}{{ '{0:{1.w}}'.format('a', ns) }}", "format width too large"),
    ("expression", "'{}{}'.format('x' * 6000000, 'y' * 6000000)", "format too large"),
    ("expression", "'%s%s' % ('x' * 6000000, 'y' * 6000000)", "printf too large"),
    ("template", REFS + "{{ '%s' % (ns.l,) }}", "printf too large"),
    ("template", REFS + "{{ '%s' | format(ns.l) }}", "printf too large"),
    # filters that can grow their input
    ("expression", "('&' * 3000000) | escape", "escape too large: would make 15,000,000"),
    ("expression", "('&' * 3000000) | e", "escape too large"),
    ("expression", "('&' * 3000000) | forceescape", "escape too large"),
    ("expression", "{'a': '&' * 3000000} | xmlattr", "xmlattr too large"),
    ("expression", "'x.io' | urlize(target='t' * 9000000)", "urlize too large"),
    ("expression", "'x.io' | urlize(rel='r' * 9000000)", "urlize too large"),
    ("expression", "['x' * 6000000, 'y' * 6000000] | string", "string too large"),
    ("expression", "['x' * 6000000, 'y' * 6000000] | pprint", "pprint too large"),
    ("expression", "[inputs.a4, inputs.a4, inputs.a4] | sum(start=[])", "sum too large: would make 12,000,000 items"),
    ("expression", "('x\n' * 3000000) | indent(2, first=true)", "indent too large: would make 12,000,002"),
    ("expression", "[['x' * 6000000], ['y' * 6000000]] | string", "string too large"),
    # str and bytes methods
    ("expression", "('a' * 1000).translate({97: 'x' * 9000000})", "translate too large: would make 9,000,000,000"),
    ("expression", "('\u00e9' * 3000000).encode('utf-16')", "encode too large"),
    ("expression", "('\u00e9' * 2000000).encode('unicode_escape')", "encode too large"),
    ("expression", "'x'.encode() * 10**10", "repetition too large"),
    ("expression", "('x' * 6000000).encode() + ('y' * 6000000).encode()", "join too large"),
    ("expression", "('x' * 6000000).encode().hex()", "hex too large"),
    ("expression", "('x'.encode()).center(999999999)", "center too large"),
    ("expression", "(1).to_bytes(10**9, 'big')", "to_bytes too large"),
    ("expression", "('x' | safe) + ('&' * 3000000)", "escaped + too large"),
    ("expression", "('%s' | safe) % ('&' * 3000000)", "escaped % too large"),
    ("expression", "('{}' | safe).format('&' * 3000000)", "format too large"),
    # every kind of template body
    (
        "template",
        BIG + "{% set b %}{{ big }}{{ big }}{% endset %}{{ b | length }}",
        "output too large: would make 18,000,000",
    ),
    ("template", BIG + "{% macro m() %}{{ big }}{{ big }}{% endmacro %}{{ m() | length }}", "output too large"),
    ("template", BIG + "{% filter upper %}{{ big }}{{ big }}{% endfilter %}", "output too large"),
    (
        "template",
        BIG + "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ big }}{{ big }}{% endcall %}",
        "output too large",
    ),
    ("template", BIG + "{% for i in range(2) %}{{ big }}{% endfor %}", "output too large"),
]


BIG_INPUTS: dict[str, Any] = {"inputs": {"s9": "x" * 9_000_000, "a4": [0] * 4_000_000, "n": 2**14000}}


@pytest.mark.parametrize(("kind", "source", "message"), OUTPUT_REFUSED)
def test_no_template_writes_past_the_cap(kind: str, source: str, message: str) -> None:
    compiled = (compile_expression if kind == "expression" else compile_template)(source)
    started = time.perf_counter()
    with pytest.raises(RenderError) as caught:
        compiled.render(BIG_INPUTS)
    assert time.perf_counter() - started < FAST_S
    assert message in str(caught.value)
    assert SIZE_MESSAGE in str(caught.value), "refused by a size check, not by the time limit"


# Every builtin filter, by whether its output can be much bigger than its input. A new Jinja2 release that adds
# a filter fails this test until the filter is put in one list or the other (and, if it can grow, checked).
FILTERS_THAT_GROW = {
    "center",
    "indent",
    "format",
    "replace",
    "join",
    "batch",
    "slice",
    "wordwrap",
    "tojson",
    "urlencode",
    "escape",
    "e",
    "forceescape",
    "xmlattr",
    "urlize",
    "string",
    "pprint",
    "sum",
}
FILTERS_THAT_DO_NOT_GROW = {
    # same size or smaller, or a number/boolean
    "abs",
    "attr",
    "capitalize",
    "count",
    "d",
    "default",
    "filesizeformat",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "max",
    "min",
    "random",
    "round",
    "safe",
    "striptags",
    "title",
    "trim",
    "upper",
    "wordcount",
    "reverse",
    "truncate",
    # the same items, in another order or shape (references, not copies); lazy ones are counted as drawn
    "dictsort",
    "groupby",
    "items",
    "list",
    "map",
    "reject",
    "rejectattr",
    "select",
    "selectattr",
    "sort",
    "unique",
}


def test_every_builtin_filter_is_classified_and_every_growing_one_is_checked() -> None:
    from engine.templates import _FILTER_CHECKS, ENV

    assert FILTERS_THAT_GROW.isdisjoint(FILTERS_THAT_DO_NOT_GROW)
    assert set(ENV.filters) == FILTERS_THAT_GROW | FILTERS_THAT_DO_NOT_GROW
    assert FILTERS_THAT_GROW.issubset(_FILTER_CHECKS)
    # and every filter (growing or not) is guarded: its result is checked against the cap after it runs
    assert all(getattr(f, "__wrapped__", None) is not None for f in ENV.filters.values())


STR_METHODS_THAT_GROW = {
    "center",
    "ljust",
    "rjust",
    "zfill",
    "expandtabs",
    "replace",
    "join",
    "format",
    "format_map",
    "translate",
    "encode",
    "upper",
    "lower",
    "title",
    "capitalize",
    "swapcase",
    "casefold",
}


def test_every_str_method_is_known() -> None:
    """A str method that can grow its text is checked before it runs (engine/template_limits.check_str_method);
    case changes can triple a string outside ASCII ('ß'.upper() is 'SS'), so their result is checked after."""
    known_small = {
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "lstrip",
        "maketrans",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
    }
    public = {m for m in dir(str) if not m.startswith("_")}
    assert public == STR_METHODS_THAT_GROW | known_small


ORDINARY_TEXT: list[tuple[str, Any]] = [
    ("'{0:{1}}|'.format('x', '3')", "x  |"),
    ("'{0:{1}{2}}|'.format('x', 1, 2)", "x           |"),
    ("'{:.{}f}'.format(1.5, 2)", "1.50"),
    ("{'a': '<b>'} | tojson", '{"a": "\\u003cb\\u003e"}'),
    ("[1, 2] | tojson(indent=2)", "[\n  1,\n  2\n]"),
    ("'a b' | urlencode", "a%20b"),
    ("{'k': '\u00e9'} | urlencode", "k=%C3%A9"),
    ("'one two three' | wordwrap(5, wrapstring='|')", "one|two|three"),
    ("'<a & b>' | escape | string", "&lt;a &amp; b&gt;"),
    ("{'id': 'x'} | xmlattr", ' id="x"'),
    ("'see https://x.io' | urlize", 'see <a href="https://x.io" rel="noopener">https://x.io</a>'),
    ("[1, 'a'] | string", "[1, 'a']"),
    ("[[1], [2, 3]] | sum(start=[])", [1, 2, 3]),
    ("'abc' | truncate(3, end='..', leeway=0)", "abc"),
    ("'\u00e9'.encode('utf-16') | length", 4),
    ("'ab'.encode().hex()", "6162"),
    ("(258).to_bytes(2, 'big') | list", [1, 2]),
    ("'a'.translate({97: 'bc'})", "bc"),
    ("('x' * 9000000) | length", 9000000),
    ("['x' * 4000000, 'y' * 4000000] | join | length", 8000000),
    ("'\u00df'.upper()", "SS"),
]


@pytest.mark.parametrize(("expression", "expected"), ORDINARY_TEXT)
def test_ordinary_text_work_is_unchanged(expression: str, expected: Any) -> None:
    value = compile_expression(expression).render({})
    assert value == expected and type(value) is type(expected)
