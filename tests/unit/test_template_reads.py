"""Reads and tests evaluated without a Jinja Context (engine/template_reads.py) give what Jinja's code gives.

Each expression is evaluated twice against the same variables: as the engine does it (the direct path
where the tree allows it) and with the direct path turned off (Jinja's generated code only); the value,
or the error's message and retryability, must be the same. The table also says which expressions the
direct path takes, so a change that quietly sends them back to Jinja fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from jinja2.parser import Parser

from engine import template_reads, templates
from engine.errors import RenderError
from engine.templates import ENV, compile_expression, compile_template

VARIABLES: dict[str, Any] = {
    "iteration": 4,
    "inputs": {"q": "hello", "dry": False, "n": 7, "s": "abc", "xs": [1, 2, 3], "none": None, "items": 5},
    "nodes": {"a": {"output": {"score": 0.7, "label": "ok"}}, "b": {"output": "text"}},
    "item": {"x": 1},
}


@dataclass(frozen=True)
class Case:
    source: str
    direct: bool  # the direct path takes it


CASES = [
    Case("iteration", True),
    Case("inputs.q", True),
    Case("inputs['q']", True),
    Case("nodes.a.output.score", True),
    Case("nodes['a']['output'].label", True),
    Case("inputs.items", True),  # a key wins over the dict method, as in the engine's sandbox
    Case("inputs.xs[0]", True),
    Case("inputs.xs[-1]", True),
    Case("inputs.xs[9]", True),  # out of range: undefined, said by Jinja
    Case("inputs.nope", True),  # missing key: undefined
    Case("nodes.c.output", True),  # a node that did not run
    Case("inputs.none.x", True),
    Case("missing_name", True),
    Case("range", True),  # a global
    Case("inputs.s.upper", True),  # a method object, allowed by the sandbox
    Case("inputs.s.__class__", True),  # refused by the sandbox
    Case("nodes.a.output.get", True),  # not a key: dict.get, by the sandbox's attribute rules
    Case("iteration < 9", True),
    Case("1 < iteration < 9", True),
    Case("1 < iteration < 3", True),
    Case("iteration == 4.0", True),
    Case("'b' in inputs.s", True),
    Case("'z' not in inputs.s", True),
    Case("inputs.q > 3", True),  # str > int: TypeError
    Case("nodes.a.output.score >= 0.5 and not inputs.dry", True),
    Case("inputs.dry or 'default'", True),
    Case("inputs.none and inputs.nope", True),  # short-circuit: the missing key is never read
    Case("inputs.q and inputs.nope", True),
    Case("not iteration", True),
    Case("3 + 1", True),
    Case("inputs.n - 10", True),
    Case("inputs.n / 2", True),
    Case("inputs.n // 2", True),
    Case("inputs.n % 3", True),
    Case("inputs.n / 0", True),
    Case("inputs.n ** 2", True),
    Case("10 ** 100000", True),  # the power check refuses it
    Case("inputs.s * 3", True),
    Case("inputs.s * 100000000", True),  # the product check refuses it
    Case("inputs.q + 1", True),  # str + int: TypeError
    Case("inputs.q + '!'", True),
    Case("'%s!' % inputs.q", True),
    Case("inputs.xs == [1, 2, 3]", False),  # a list literal: Jinja's code
    Case("inputs.q | upper", False),  # filters: Jinja's code
    Case("inputs.q ~ '!'", False),
    Case("inputs.xs[1:]", False),
    Case("-inputs.n", True),
    Case("-inputs.q", True),  # TypeError
    Case("+inputs.n", True),
]




def _outcome(render: Any) -> tuple[str, Any]:
    try:
        return "value", render(VARIABLES)
    except RenderError as exc:
        return "error", (str(exc), exc.retryable)


def _both(source: str) -> list[tuple[str, Any]]:
    """The expression's outcome, and that of the same text as a lone ``{{ }}`` template; nothing cached."""
    templates.clear_compiled_cache()
    try:
        return [_outcome(compile_expression(source).render), _outcome(compile_template("{{ " + source + " }}").render)]
    finally:
        templates.clear_compiled_cache()


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_direct_evaluation_matches_jinja(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = Parser(ENV, case.source, state="variable").parse_expression()
    assert (template_reads.direct(tree, ENV, dict(ENV.globals)) is not None) == case.direct
    engine = _both(case.source)
    monkeypatch.setattr(templates, "direct", lambda *args: None)
    assert engine == _both(case.source)
