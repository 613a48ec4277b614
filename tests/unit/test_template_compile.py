"""Compiling templates (issue 17): each text parsed once, compiled once per process, its code made when
it is first evaluated.

A compiled template is kept by its kind and text and shared by every document that uses the same text
(an edited document compiles only what is new); validating a document parses and checks its templates
but generates no code (a template without statements gets its code at its first render); an
expression's code is generated from the tree already parsed; one walk of that tree finds what three
used to. What a document's author sees must not change: the same problems at load, the same values and
errors at run time. The spies below count calls of Jinja's real ``from_string`` and of the real
compile functions (they still run); nothing stands in for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.parser import Parser

from engine import WorkflowInvalid, load_workflow, run_workflow
from engine import templates as templates_module
from engine.errors import RenderError
from engine.templates import ENV, clear_compiled_cache, compile_expression, compile_template

CONTEXT: dict[str, Any] = {"inputs": {"q": "hi"}, "nodes": {"a": {"output": 5}}, "iteration": 0}


@pytest.fixture
def code_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """What Jinja made code from (a source text or a parsed tree), in order."""
    clear_compiled_cache()
    made: list[Any] = []
    real = templates_module.ENV.from_string

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(templates_module.ENV, "from_string", counting)
    yield made
    clear_compiled_cache()


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The texts compiled (parsed and checked), in order."""
    clear_compiled_cache()
    seen: list[str] = []
    for name in ("_compile_expression", "_compile_template"):
        real = getattr(templates_module, name)

        def counting(source: str, real: Any = real) -> Any:
            seen.append(source)
            return real(source)

        monkeypatch.setattr(templates_module, name, counting)
    yield seen
    clear_compiled_cache()


def test_the_same_text_is_compiled_once_for_every_document(code_made: list[Any]) -> None:
    first = compile_expression("nodes.a.output + 1")
    assert compile_expression("nodes.a.output + 1") is first
    lone = compile_template("{{ nodes.a.output }}")
    assert compile_template("{{ nodes.a.output }}") is lone
    text = compile_template("nodes.a.output + 1")
    assert text is not first  # a template and an expression differ
    assert code_made == []  # no code until a render
    for compiled in (first, lone, text, first, lone, text):
        compiled.render(CONTEXT)
    assert len(code_made) == 2  # one expression, one lone-expression template: plain text needs no code
    clear_compiled_cache()
    assert compile_expression("nodes.a.output + 1") is not first


def test_a_shared_template_renders_each_context_on_its_own(code_made: list[Any]) -> None:
    one = compile_template("Hello {{ inputs.q }}!")
    other = compile_template("Hello {{ inputs.q }}!")
    assert one is other
    assert one.render({"inputs": {"q": "a"}}) == "Hello a!"
    assert other.render({"inputs": {"q": "b"}}) == "Hello b!"


def test_an_edited_document_compiles_only_its_new_text(compiles: list[str]) -> None:
    def doc(second: str) -> dict[str, Any]:
        return {
            "format": "workflow/v1",
            "name": f"edited {second}",
            "nodes": [
                {"id": "start", "type": "input"},
                {"id": "a", "type": "transform", "config": {"expression": "41 + iteration"}},
                {"id": "b", "type": "transform", "config": {"expression": second}},
            ],
            "edges": [{"source": "start", "target": "a"}, {"source": "a", "target": "b"}],
        }

    load_workflow(doc("nodes.a.output + 1"))
    assert compiles == ["41 + iteration", "nodes.a.output + 1"]
    load_workflow(doc("nodes.a.output + 2"))
    assert compiles[2:] == ["nodes.a.output + 2"]  # only the changed expression


def test_validation_generates_no_code_and_a_run_generates_it_once_per_text(code_made: list[Any]) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "chain",
        "nodes": [{"id": "start", "type": "input"}, {"id": "n0", "type": "transform", "config": {"expression": "1"}}]
        + [
            {"id": f"n{i}", "type": "transform", "config": {"expression": f"nodes.n{i - 1}.output + 1"}}
            for i in range(1, 20)
        ]
        + [{"id": "out", "type": "output", "config": {"value": "total {{ nodes.n19.output }}"}}],
        "edges": [{"source": "start", "target": "n0"}]
        + [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(19)]
        + [{"source": "n19", "target": "out"}],
    }
    workflow = load_workflow(doc)
    assert code_made == []
    for _ in range(2):
        assert asyncio.run(run_workflow(workflow, {})).result == {"out": "total 20"}
        assert len(code_made) == 21  # 20 expressions and the output's text, the second run makes none


def test_the_cache_is_bounded(compiles: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates_module, "_COMPILED_SIZE", 2)
    first = compile_expression("1 + 1")
    compile_expression("1 + 2")
    assert compile_expression("1 + 1") is first  # used last: kept
    compile_expression("1 + 3")  # forgets "1 + 2", the least recently used
    assert compile_expression("1 + 1") is first
    assert len(compiles) == 3
    compile_expression("1 + 2")
    assert len(compiles) == 4


def test_an_expressions_code_is_made_from_the_tree_parsed_once(code_made: list[Any]) -> None:
    compiled = compile_expression("nodes.a.output * 2")
    template = compile_template("{{ nodes.a.output * 3 }}")
    assert compiled.render(CONTEXT) == 10
    assert template.render(CONTEXT) == 15
    assert len(code_made) == 2 and all(isinstance(made, nodes.Template) for made in code_made)


def test_an_unknown_filter_in_an_inline_if_fails_when_called_as_jinja_does() -> None:
    compiled = compile_expression("nodes.a.output if inputs.q else (inputs.q | no_such_filter)")
    assert compiled.render(CONTEXT) == 5  # compiled (Jinja compiles it too), the filter never called
    with pytest.raises(RenderError, match="no_such_filter"):
        compiled.render({**CONTEXT, "inputs": {"q": ""}})


@pytest.mark.parametrize(
    ("source", "compile_", "message", "line"),
    [  # the messages and lines main gave
        ("nodes.a.output | no_such_filter", compile_expression, "No filter named 'no_such_filter'.", 1),
        ("nodes.a.output is no_such_test", compile_expression, "No test named 'no_such_test'.", 1),
        ("nodes.a.output )", compile_expression, "unexpected ')'", 1),
        ("a +\n (", compile_expression, "unexpected 'end of template'", 2),
        ("   ", compile_expression, "expression is empty", 1),
        ("{{ inputs.q | no_such_filter }}", compile_template, "No filter named 'no_such_filter'.", 1),
        ("Hi {{ inputs.q | no_such_filter }}", compile_template, "No filter named 'no_such_filter'.", 1),
        (
            "{% for loop in [1] %}{% endfor %}",
            compile_template,
            "Can't assign to special loop variable in for-loop target",
            1,
        ),
        ("{{ a, b }}", compile_template, "chunk after expression", 1),
        ("{{ a\n + }}", compile_template, "unexpected 'end of print statement'", 2),
    ],
)
def test_what_was_refused_is_refused_the_same_every_time(
    code_made: list[Any], source: str, compile_: Any, message: str, line: int
) -> None:
    for _ in range(2):  # a failure is not kept: the second compile refuses the same way
        with pytest.raises(TemplateSyntaxError) as caught:
            compile_(source)
        assert (caught.value.message, caught.value.lineno) == (message, line)


def test_an_unknown_filter_is_still_one_of_the_documents_problems() -> None:
    doc = {
        "format": "workflow/v1",
        "name": "unknown filter",
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "t", "type": "transform", "config": {"expression": "iteration | no_such_filter"}},
            {"id": "u", "type": "transform", "config": {"expression": "nodes.nope.output"}},
        ],
        "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "u"}],
    }
    for _ in range(2):  # the second load meets the first's compiled templates
        with pytest.raises(WorkflowInvalid) as caught:
            load_workflow(doc)
        messages = [f"{p.where}: {p.message}" for p in caught.value.problems]
        assert "node 't': config.expression does not parse: No filter named 'no_such_filter'. (line 1)" in messages
        assert any("node 'u'" in m and "unknown node 'nope'" in m for m in messages), messages


def test_a_deeply_nested_expression_compiles_and_evaluates(code_made: list[Any]) -> None:
    source = "nodes.a.output + (" * 45 + "1" + ")" * 45
    assert compile_expression(source).render(CONTEXT) == 5 * 45 + 1


@pytest.mark.parametrize(
    ("source", "message"),
    [  # the messages main gave
        ("nodes.b.output", "undefined variable in 'nodes.b.output': has no attribute 'b'"),
        (
            "inputs.q.__class__",
            "refused by the sandbox in 'inputs.q.__class__': "
            "access to attribute '__class__' of 'str' object is unsafe.",
        ),
        ("nodes.a.output / 0", "error in 'nodes.a.output / 0': ZeroDivisionError: division by zero"),
    ],
)
def test_a_shared_template_gives_the_same_errors(code_made: list[Any], source: str, message: str) -> None:
    for _ in range(2):
        with pytest.raises(RenderError) as caught:
            compile_expression(source).render(CONTEXT)
        assert str(caught.value) == message


def _old_walks(tree: nodes.Node) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Names, ``nodes.<id>`` and ``inputs.<name>`` reads as main found them, in separate walks (the root
    included: main missed the one name of ``iteration`` and the one read of ``inputs.q``)."""
    everything = [tree, *tree.find_all(nodes.Node)]
    if isinstance(tree, nodes.Template):
        names = frozenset(meta.find_undeclared_variables(tree))
    else:
        names = frozenset(n.name for n in everything if isinstance(n, nodes.Name) and n.ctx == "load")
    reads: list[tuple[str, str]] = []
    for node in everything:
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            continue
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        if not isinstance(node.node, nodes.Name):
            continue
        if isinstance(node, nodes.Getattr):
            reads.append((node.node.name, node.attr))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            reads.append((node.node.name, node.arg.value))
    node_refs = frozenset(k for t, k in reads if t == "nodes")
    input_refs = frozenset(k for t, k in reads if t == "inputs")
    return names, node_refs, input_refs


def _old_makes_values(tree: nodes.Node) -> bool:
    """Whether an expression may make a new value, as main found it."""
    for node in tree.find_all(nodes.Node):
        if isinstance(node, (nodes.Name, nodes.Const)):
            continue
        if isinstance(node, nodes.Getattr) or (isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)):
            continue
        return True
    return not isinstance(tree, (nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Const))


EXPRESSIONS = [
    "iteration",
    "inputs.q",
    "inputs[inputs.key]",
    "nodes.a.output + 1",
    "nodes['b'].output ~ inputs.q",
    "inputs['x'] if nodes.c.output else inputs.y[0]",
    "nodes.d.output | map(attribute='v') | list",
    "nodes.a.output",
    "inputs['q']",
    "'constant'",
    "(nodes.e.output, inputs.z) | length > iteration",
    "nodes[inputs.which].output",
    "range(3) | sum",
    "{'k': nodes.f.output, 'j': inputs['w']}",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_one_walk_finds_what_the_separate_walks_found(source: str) -> None:
    compiled = compile_expression(source)
    assert (compiled.names, compiled.node_refs, compiled.input_refs) == _old_walks(
        Parser(ENV, source, state="variable").parse_expression()
    )
    tree = Parser(ENV, source, state="variable").parse_expression()
    assert templates_module._scan(tree).makes_values == _old_makes_values(tree)
    text = f"Say {{{{ {source} }}}} {{% for n in nodes.g.output %}}{{{{ n ~ loop.index }}}}{{% endfor %}}"
    template = compile_template(text)
    assert (template.names, template.node_refs, template.input_refs) == _old_walks(ENV.parse(text))
    plain = f"Say {{{{ {source} }}}} and {{{{ inputs.other }}}}"  # no statement: names from the one walk
    template = compile_template(plain)
    assert (template.names, template.node_refs, template.input_refs) == _old_walks(ENV.parse(plain))


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("inputs.nope", "config.expression refers to unknown input 'nope'"),
        ("nope", "config.expression uses unknown variable 'nope'"),
        ("nodes.nope", "config.expression refers to unknown node 'nope'"),
    ],
)
def test_a_one_name_expression_is_checked_at_load(expression: str, problem: str) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "one name",
        "inputs": {"q": {"type": "string"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "t", "type": "transform", "config": {"expression": expression}},
        ],
        "edges": [{"source": "start", "target": "t"}],
    }
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(doc)
    assert any(p.where == "node 't'" and p.message.startswith(problem) for p in caught.value.problems), [
        p.message for p in caught.value.problems
    ]
