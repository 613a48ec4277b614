"""Templates cannot hold the event loop: the render time budget (engine/template_budget.py).

Templates render on the runtime's one event loop. Before the budget, nested
``range`` loops never finished and a slow filter on a big value held the loop
for seconds: the run ignored its timeout and cancel, and every other run in
the process stalled. Table-driven: each slow template must fail with the
render time limit named, having held the loop for less than 100 ms (best of
a few tries); ordinary work must still render.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from engine import template_budget
from engine.errors import RenderError
from engine.templates import compile_expression, compile_template
from tests.timing import best_time, machine_slowdown

HOLD_S = 0.1  # the longest a template may keep the loop from other runs (processor time; see docs/semantics.md)
LIMIT_MESSAGE = "render time limit reached"

CONTEXT: dict[str, Any] = {
    "inputs": {
        "a4": [0] * 4_000_000,
        "b4": [0] * 4_000_000,
        "s9": "x" * 9_000_000,
        "t9": "x" * 9_000_000,
        "words": "lorem ipsum dolor sit amet, www.example.org " * 200_000,
        "d": {f"k{i}": i for i in range(200_000)},
        "rows": [{"a": i % 7, "b": str(i)} for i in range(200_000)],
    }
}

SLOW: list[tuple[str, str]] = [
    # loops: the case of issue 12 §2, and loops hidden in other shapes
    ("template", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
    ("template", "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}"),
    (
        "template",
        "{% for i in range(100000) if i > 10 ** 9 %}"
        "{% for j in range(100000) if j > 10 ** 9 %}{% endfor %}{% endfor %}",
    ),
    ("template", "{% for i in range(100000) %}{% for c in inputs.s9 %}{% endfor %}{% endfor %}"),
    (
        "template",
        "{% for x in range(100000) recursive %}{% if loop.depth < 3 %}{{ loop(range(100000)) }}{% endif %}{% endfor %}",
    ),
    ("template", "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"),
    ("template", "{% for i in range(100000) %}{{ range(100000) | map('string') | list | length }}{% endfor %}"),
    ("expression", "range(100000) | map('string') | map('center', 300) | map('upper') | list | length"),
    # one filter or method on a big value: estimated from its size and refused before it starts
    ("expression", "inputs.s9 | list | sort | length"),
    ("expression", "inputs.rows | sort(attribute='b') | length"),
    ("expression", "inputs.rows | groupby('a') | length"),
    ("expression", "inputs.rows | map(attribute='b') | unique | list | length"),
    ("expression", "inputs.d | dictsort | length"),
    ("expression", "inputs.words | wordwrap(40) | length"),
    ("expression", "inputs.words[:200000] | urlize | length"),
    ("expression", "inputs.words | title | length"),
    ("expression", "inputs.words | wordcount"),
    ("expression", "inputs.rows | pprint | length"),
    ("expression", "inputs.rows | tojson | length"),
    ("expression", "inputs.rows | max(attribute='b')"),
    ("expression", "inputs.rows | sum(attribute='a')"),
    ("expression", "('\u00df' * 9000000) | upper | length"),
    ("expression", "('\u00df' * 9000000).upper() | length"),
    ("expression", "dict.fromkeys(inputs.s9) | length"),
    ("expression", "(inputs.s9 ~ ' ').split(' ') | length if false else inputs.words.split() | length"),
    # cheap-looking operations repeated: comparisons of big values, membership, the size checks themselves
    ("template", "{% for i in range(100000) %}{% if inputs.a4 == inputs.b4 %}{% endif %}{% endfor %}"),
    ("template", "{% for i in range(100000) %}{% if 'y' in inputs.s9 %}{% endif %}{% endfor %}"),
    ("template", "{% for i in range(100000) %}{% if inputs.s9 == inputs.t9 %}{% endif %}{% endfor %}"),
    (
        "template",
        "{% for i in range(100000) %}{{ 1 if inputs.a4 is sameas inputs.b4 }}{{ inputs.s9 | length }}{% endfor %}",
    ),
    ("expression", "inputs.rows | list"),
]


def _render(kind: str, source: str) -> tuple[float, str]:
    compiled = (compile_expression if kind == "expression" else compile_template)(source)
    started = time.thread_time()
    try:
        compiled.render(CONTEXT)
    except RenderError as exc:
        return time.thread_time() - started, str(exc)
    return time.thread_time() - started, "rendered"


@pytest.mark.parametrize(("kind", "source"), SLOW)
def test_slow_templates_fail_on_the_time_limit_within_100_ms(kind: str, source: str) -> None:
    tries: list[tuple[float, float, float]] = []  # (wall, processor time, how much the machine stretched work)
    for _ in range(5):
        stretch = machine_slowdown(0.01)
        wall, (busy, message) = best_time(lambda: _render(kind, source), tries=1)
        assert LIMIT_MESSAGE in message, message
        assert "the limit is 50 ms" in message
        tries.append((wall, busy, stretch))
        if busy < HOLD_S and wall < HOLD_S * stretch:
            break
    seen = [f"{w * 1000:.0f} ms ({b * 1000:.0f} ms processor, machine x{f:.1f})" for w, b, f in tries]
    # the processor time it took: what it kept the loop from doing for others
    assert min(b for _, b, _ in tries) < HOLD_S, f"held the loop for {seen}"
    # and the wall time, which a machine busy with other processes stretches for any work
    assert any(w < HOLD_S * f for w, _, f in tries), f"held the loop for {seen}"


ORDINARY: list[tuple[str, str, Any]] = [
    ("template", "{% for i in range(1000) %}{{ i % 10 }}{% endfor %}", None),
    ("template", "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}done", "done"),
    # (sized to take 10-20 ms of processor time on a quiet machine: a machine busy with other jobs
    # stretches processor time too, 2-3x seen, and the limit is 50 ms)
    ("expression", "range(2000) | map('string') | list | sort | first", "0"),
    ("expression", "range(8000) | select('odd') | list | length", 4000),
    ("expression", "(inputs.s9 | length) + (inputs.a4 | length)", 13_000_000),
    ("expression", "inputs.s9 | upper | length", 9_000_000),
    ("expression", "inputs.a4 is sameas inputs.a4", True),
    ("template", "{{ inputs.rows }}", None),  # a lone reference: passed along, not measured
    ("expression", "inputs.rows[:1000] | map(attribute='b') | join(',') | length", 3889),
    ("expression", "inputs.rows[:20000] | list | length", 20000),
]


@pytest.mark.parametrize(("kind", "source", "expected"), ORDINARY)
def test_ordinary_work_still_renders(kind: str, source: str, expected: Any) -> None:
    compiled = (compile_expression if kind == "expression" else compile_template)(source)
    for attempt in range(3):  # the best of three: a machine busy with other jobs slows processor time too
        try:
            value = compiled.render(CONTEXT)
            break
        except RenderError as exc:
            if LIMIT_MESSAGE not in str(exc) or attempt == 2:
                raise
    if expected is not None:
        assert value == expected


# A template that takes a few milliseconds: well under the limit on its own.
MEDIUM = "{% for i in range(1000) %}{{ i }}{% endfor %}"


def test_renders_outside_an_event_loop_each_get_the_whole_limit() -> None:
    compiled = compile_template(MEDIUM)
    for _ in range(30):
        compiled.render({})


async def test_renders_in_one_turn_of_the_loop_share_one_limit() -> None:
    """A node rendering many strings (an output's value, a map item's config) in one go cannot add up to
    more than the limit: the slice lasts until the loop runs again."""
    compiled = compile_template(MEDIUM)
    started = time.perf_counter()
    with pytest.raises(RenderError, match=LIMIT_MESSAGE):
        for _ in range(5000):
            compiled.render({})
    assert time.perf_counter() - started < 1.0
    assert template_budget.must_yield()
    await template_budget.next_turn()  # the loop served its timers: a new slice, with the whole limit
    assert not template_budget.must_yield()
    compiled.render({})


async def test_each_turn_of_the_loop_gets_a_new_slice() -> None:
    compiled = compile_template(MEDIUM)
    for _ in range(30):
        compiled.render({})
        await asyncio.sleep(0.001)  # the loop serves its timers: the slice closes


def test_the_limit_is_what_the_readme_says() -> None:
    assert template_budget.RENDER_TIME_LIMIT_S == 0.05
