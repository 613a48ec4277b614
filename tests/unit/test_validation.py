"""Validation of workflow/v1 documents (spec: "The file", "Validation").

Table-driven: each case mutates a small valid document and names the
substrings one reported problem must contain (the node or edge it is about,
then what is wrong). Words given as a tuple are alternatives: any one of them
may appear, so harmless rewording does not break the table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import engine
from engine import WorkflowInvalid, load_workflow, run_workflow
from engine.model import MAX_NAME_CHARS, MAX_NODE_ID_CHARS
from tools import tool

Doc = dict[str, Any]
Expect = list[str | tuple[str, ...]]


# --------------------------------------------------------------------------- helpers

BASE: Doc = {
    "format": "workflow/v1",
    "name": "validation base",
    "inputs": {"query": {"type": "string", "default": "cats"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "research", "type": "agent", "config": {"prompt": "Research {{ inputs.query }}"}},
        {"id": "done", "type": "output", "config": {"value": "{{ nodes.research.output }}"}},
    ],
    "edges": [
        {"source": "start", "target": "research"},
        {"source": "research", "target": "done"},
    ],
}


def base() -> Doc:
    return copy.deepcopy(BASE)


def node(doc: Doc, node_id: str) -> Doc:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def add(doc: Doc, new_node: Doc | None = None, *edges: tuple[str, str] | tuple[str, str, str]) -> Doc:
    if new_node is not None:
        doc["nodes"].append(new_node)
    for e in edges:
        edge: Doc = {"source": e[0], "target": e[1]}
        if len(e) == 3:
            edge["when"] = e[2]
        doc["edges"].append(edge)
    return doc


def drop_edge(doc: Doc, source: str, target: str) -> Doc:
    doc["edges"] = [e for e in doc["edges"] if (e["source"], e["target"]) != (source, target)]
    return doc


def with_condition(doc: Doc, expression: str = "nodes.research.output == 'x'") -> Doc:
    """research -> check -> done (check is a condition, edges carry when)."""
    drop_edge(doc, "research", "done")
    return add(
        doc,
        {"id": "check", "type": "condition", "config": {"expression": expression}},
        ("research", "check"),
        ("check", "done", "true"),
        ("check", "done", "default"),
    )


def transform(node_id: str, **config: Any) -> Doc:
    return {"id": node_id, "type": "transform", "config": config}


def _matches(text: str, expect: Expect) -> bool:
    low = text.lower()
    for part in expect:
        options = part if isinstance(part, tuple) else (part,)
        if not any(opt.lower() in low for opt in options):
            return False
    return True


def assert_problem(exc: WorkflowInvalid, expect: Expect) -> None:
    texts = [str(p) for p in exc.problems]
    assert any(_matches(t, expect) for t in texts), f"no problem matches {expect!r}; problems were:\n" + "\n".join(
        texts
    )


def problems_of(doc: Any) -> WorkflowInvalid:
    with pytest.raises(WorkflowInvalid) as info:
        load_workflow(doc)
    exc = info.value
    assert exc.problems, "WorkflowInvalid must carry at least one Problem"
    for p in exc.problems:
        assert isinstance(p, engine.Problem)
    return exc


# --------------------------------------------------------------------------- the table


def _set(path: list[Any], value: Any) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        target: Any = doc
        for key in path[:-1]:
            target = node(doc, key) if target is doc and isinstance(key, str) and key not in doc else target[key]
        target[path[-1]] = value
        return doc

    return mutate


def _del(key: str) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        del doc[key]
        return doc

    return mutate


def _agent_config(config: Doc) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        node(doc, "research")["config"] = config
        return doc

    return mutate


def _prompt(text: str) -> Callable[[Doc], Doc]:
    return _agent_config({"prompt": text})


def _map(config: Doc) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        return add(doc, {"id": "fan", "type": "map", "config": config}, ("start", "fan"), ("fan", "done"))

    return mutate


def _rename(old: str, new: str) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        node(doc, old)["id"] = new
        for e in doc["edges"]:
            for end in ("source", "target"):
                if e[end] == old:
                    e[end] = new
        return doc

    return mutate


def _no_input(doc: Doc) -> Doc:
    node(doc, "start")["type"] = "transform"
    node(doc, "start")["config"] = {"expression": "1"}
    return doc


def _cycle_without_condition(doc: Doc) -> Doc:
    # start -> research -> a -> b -> a (back-edge), b -> done
    drop_edge(doc, "research", "done")
    add(doc, transform("loop_a", expression="1"), ("research", "loop_a"))
    add(doc, transform("loop_b", expression="2"), ("loop_a", "loop_b"), ("loop_b", "loop_a"), ("loop_b", "done"))
    return doc


def _condition_edge_without_when(doc: Doc) -> Doc:
    with_condition(doc)
    for e in doc["edges"]:
        if e["source"] == "check" and e.get("when") == "default":
            del e["when"]
    return doc


def _when_on_plain_edge(doc: Doc) -> Doc:
    doc["edges"][0]["when"] = "true"
    return doc


def _two_outputs_named(doc: Doc) -> Doc:
    node(doc, "done")["config"]["name"] = "answer"
    return add(
        doc,
        {"id": "done2", "type": "output", "config": {"value": "x", "name": "answer"}},
        ("research", "done2"),
    )


CASES: list[tuple[str, Callable[[Doc], Doc], Expect]] = [
    ("format missing", _del("format"), ["format", "workflow/v1"]),
    ("format wrong", _set(["format"], "workflow/v2"), ["format", ("workflow/v2", "workflow/v1")]),
    ("format not a string", _set(["format"], 1), ["format", "workflow/v1"]),
    ("unknown top-level key", lambda d: {**d, "nodez": []}, ["nodez", "unknown"]),
    ("typo of a top-level key", lambda d: {**d, "setings": {}}, ["setings", "unknown"]),
    ("name missing", _del("name"), ["name", ("required", "missing")]),
    ("name empty", _set(["name"], "  "), ["name", ("required", "empty", "non-empty")]),
    (
        "duplicate node id",
        lambda d: add(d, transform("research", expression="1")),
        ["research", "duplicate"],
    ),
    ("id starting with a digit", _rename("research", "1research"), ["1research", ("pattern", "match", "invalid")]),
    ("id with a space", _rename("research", "re search"), ["re search", ("pattern", "match", "invalid")]),
    ("name longer than the store keeps", _set(["name"], "n" * 501), ["name", "501", "500"]),
    ("id longer than the store keeps", _rename("research", "r" * 201), ["r" * 201, "200"]),
    ("id with a dot", _rename("research", "re.search"), ["re.search", ("pattern", "match", "invalid")]),
    ("unknown node type", _set(["research", "type"], "llm"), ["research", "unknown", "type", "llm"]),
    ("unknown config key (promt)", _agent_config({"promt": "hi"}), ["research", "promt", "unknown"]),
    (
        "unknown config key beside a good one",
        _agent_config({"prompt": "hi", "temprature": 1}),
        ["research", "temprature", "unknown"],
    ),
    ("agent without prompt", _agent_config({}), ["research", "prompt", ("required", "missing")]),
    (
        "agent max_tokens of 0",
        _agent_config({"prompt": "hi", "max_tokens": 0}),
        ["research", "max_tokens", ("greater", ">=", "at least")],
    ),
    (
        "agent max_tokens not a number",
        _agent_config({"prompt": "hi", "max_tokens": "lots"}),
        ["research", "max_tokens", "integer"],
    ),
    (
        "agent max_tokens true",
        _agent_config({"prompt": "hi", "max_tokens": True}),
        ["research", "max_tokens", "integer"],
    ),
    (
        "condition without expression",
        lambda d: with_condition(d) and (node(d, "check").__setitem__("config", {}) or d),
        ["check", "expression", ("required", "missing")],
    ),
    (
        "map without items",
        _map({"node": {"type": "transform", "config": {"expression": "item"}}}),
        ["fan", "items", ("required", "missing")],
    ),
    ("map without node", _map({"items": "[1, 2]"}), ["fan", "node", ("required", "missing")]),
    (
        "edge to an unknown node",
        lambda d: add(d, None, ("research", "ghost")),
        ["research -> ghost", "unknown", "ghost"],
    ),
    (
        "edge from an unknown node",
        lambda d: add(d, None, ("phantom", "done")),
        ["phantom -> done", "unknown", "phantom"],
    ),
    ("no input node", _no_input, ["input", ("none", "exactly one", "no input")]),
    (
        "two input nodes",
        lambda d: add(d, {"id": "start2", "type": "input"}, ("start2", "done")),
        ["input", "start2", ("exactly one", "more than one", "two")],
    ),
    ("edge into the input node", lambda d: add(d, None, ("done", "start")), ["done -> start", "input"]),
    (
        "node not reachable from the input",
        lambda d: add(d, transform("island", expression="1"), ("island", "done")),
        ["island", "reachable"],
    ),
    ("cycle without a condition", _cycle_without_condition, ["loop_b -> loop_a", "cycle", "condition"]),
    ("condition edge without when", _condition_edge_without_when, ["check -> done", "when"]),
    ("when on a non-condition edge", _when_on_plain_edge, ["start -> research", "when"]),
    ("template does not parse", _prompt("Research {{ inputs.query "), ["research", "prompt", "parse"]),
    ("template with a bad block", _prompt("{% if inputs.query %}yes"), ["research", "prompt", "parse"]),
    (
        "expression does not parse",
        lambda d: with_condition(d, "nodes.research.output >="),
        ["check", "expression", "parse"],
    ),
    (
        "expression with trailing garbage",
        lambda d: with_condition(d, "nodes.research.output == 'a' 'b' )"),
        ["check", "expression", "parse"],
    ),
    ("template refers to an unknown node", _prompt("{{ nodes.nope.output }}"), ["research", "nope", "unknown node"]),
    (
        "template refers to an unknown node (subscript)",
        _prompt("{{ nodes['nope'].output }}"),
        ["research", "nope", "unknown node"],
    ),
    ("template refers to an unknown input", _prompt("{{ inputs.nope }}"), ["research", "nope", "unknown input"]),
    (
        "template uses an unknown variable",
        _prompt("Tell me about {{ query }}"),
        ["research", "query", "unknown variable"],
    ),
    ("item outside a map", _prompt("{{ item }}"), ["research", "item", "map"]),
    ("index outside a map", _prompt("{{ index }}"), ["research", "index", "map"]),
    (
        "output value refers to an unknown node",
        _set(["done", "config"], {"value": {"a": ["{{ nodes.ghost.output }}"]}}),
        ["done", "ghost", "unknown node"],
    ),
    (
        "unknown tool in a tool node",
        lambda d: add(
            d, {"id": "t", "type": "tool", "config": {"tool": "no_such_tool_xyz"}}, ("start", "t"), ("t", "done")
        ),
        ["node 't'", "no_such_tool_xyz", "unknown tool"],
    ),
    (
        "unknown tool in an agent's tools",
        _agent_config({"prompt": "hi", "tools": ["no_such_tool_xyz"]}),
        ["research", "no_such_tool_xyz", "unknown tool"],
    ),
    ("duplicate output names", _two_outputs_named, ["answer", ("used by another", "duplicate", "unique")]),
    (
        "output name equal to another output's id",
        lambda d: add(
            d, {"id": "other", "type": "output", "config": {"value": "x", "name": "done"}}, ("research", "other")
        ),
        ["done", ("used by another", "duplicate", "unique")],
    ),
    (
        "transform with both expression and template",
        lambda d: add(d, transform("tr", expression="1", template="x"), ("start", "tr"), ("tr", "done")),
        ["node 'tr'", "expression", "template"],
    ),
    (
        "transform with neither expression nor template",
        lambda d: add(d, transform("tr"), ("start", "tr"), ("tr", "done")),
        ["node 'tr'", "expression", "template"],
    ),
    (
        "map inner node of type output",
        _map({"items": "[1]", "node": {"type": "output", "config": {"value": "x"}}}),
        ["fan", "output", "map"],
    ),
    (
        "map inner node of type map",
        _map({"items": "[1]", "node": {"type": "map", "config": {}}}),
        ["fan", "map", ("cannot", "not allowed")],
    ),
    ("map inner node of type input", _map({"items": "[1]", "node": {"type": "input"}}), ["fan", "input", "map"]),
    (
        "map inner node config refers to an unknown node",
        _map({"items": "[1]", "node": {"type": "transform", "config": {"expression": "nodes.zzz.output"}}}),
        ["fan", "zzz", "unknown node"],
    ),
    (
        "map inner node config typo",
        _map({"items": "[1]", "node": {"type": "transform", "config": {"expresion": "item"}}}),
        ["fan", "expresion", "unknown"],
    ),
    (
        "map items does not parse",
        _map({"items": "[1, 2", "node": {"type": "transform", "config": {"expression": "item"}}}),
        ["fan", "items", "parse"],
    ),
    ("unknown input type", _set(["inputs"], {"query": {"type": "str"}}), ["query", "type"]),
    ("unknown settings key", _set(["settings"], {"max_iteration": 3}), ["max_iteration", "unknown"]),
    ("retry with zero attempts", _set(["research", "retry"], {"attempts": 0}), ["research", "attempts"]),
    ("unknown node key", _set(["research", "cfg"], {}), ["research", "cfg", ("unknown", "extra")]),
    ("nodes missing", _del("nodes"), ["nodes"]),
]


@pytest.mark.parametrize(("name", "mutate", "expect"), CASES, ids=[c[0] for c in CASES])
def test_invalid_document_is_rejected_with_a_named_problem(
    name: str, mutate: Callable[[Doc], Doc], expect: Expect
) -> None:
    doc = mutate(base())
    exc = problems_of(doc)
    assert_problem(exc, expect)
    # the exception's own message lists the problems too (what the CLI prints)
    for p in exc.problems:
        assert str(p) in str(exc)


def test_base_document_is_valid() -> None:
    wf = load_workflow(base())
    assert [n.id for n in wf.nodes] == ["start", "research", "done"]


def test_name_and_ids_as_long_as_the_store_keeps_are_valid() -> None:
    doc = add(base(), transform("r" * MAX_NODE_ID_CHARS, expression="1"), ("research", "r" * MAX_NODE_ID_CHARS))
    doc["name"] = "n" * MAX_NAME_CHARS
    loaded = load_workflow(doc)
    assert loaded.name == doc["name"] and "r" * MAX_NODE_ID_CHARS in {n.id for n in loaded.nodes}


def test_condition_edges_with_when_are_valid() -> None:
    load_workflow(with_condition(base()))


def test_unquoted_yaml_boolean_when_loads_or_is_a_workflow_invalid() -> None:
    doc = with_condition(base())
    text = yaml.safe_dump(doc, sort_keys=False).replace("when: 'true'", "when: true")
    assert "when: true" in text
    try:
        load_workflow(text)
    except WorkflowInvalid as exc:  # rejecting it with a named problem would satisfy the contract too
        assert_problem(exc, ["check -> done", "when"])


def test_loop_through_a_condition_is_valid() -> None:
    doc = base()
    drop_edge(doc, "research", "done")
    add(doc, {"id": "again", "type": "condition", "config": {"expression": "iteration < 2"}})
    add(doc, None, ("research", "again"), ("again", "research", "true"), ("again", "done", "default"))
    load_workflow(doc)


def test_item_and_index_are_fine_inside_a_map() -> None:
    doc = _map(
        {"items": "[1, 2, 3]", "node": {"type": "transform", "config": {"template": "{{ index }}: {{ item }}"}}}
    )(base())
    load_workflow(doc)


# --------------------------------------------------------------------------- all at once


def test_many_problems_are_all_reported_at_once() -> None:
    doc = base()
    doc["format"] = "workflow/v0"  # 1
    doc["colour"] = "blue"  # 2
    del doc["name"]  # 3
    node(doc, "research")["config"] = {"promt": "hi {{ inputs.query }}"}  # 4 (typo) (+ prompt missing)
    node(doc, "done")["config"] = {"value": "{{ nodes.nope.output }}"}  # 5
    calc = {"id": "calc", "type": "tool", "config": {"tool": "no_such_tool_xyz"}}
    add(doc, calc, ("start", "calc"), ("calc", "done"))  # 6
    add(doc, transform("island", expression="1 +"), ("island", "done"))  # 7 unreachable, 8 does not parse
    add(doc, None, ("start", "research", "yes"))  # 9 when on a non-condition edge
    add(doc, transform("t2", template="{{ query }}"), ("start", "t2"), ("t2", "done"))  # 10 unknown variable
    # 11 a cycle without condition
    add(doc, transform("loop_a", expression="1"), ("start", "loop_a"), ("loop_a", "done"))
    add(doc, transform("loop_b", expression="1"), ("loop_a", "loop_b"), ("loop_b", "loop_a"))
    exc = problems_of(doc)
    expected: list[Expect] = [
        ["format", "workflow/v1"],
        ["colour", "unknown"],
        ["name", ("required", "missing")],
        ["research", "promt", "unknown"],
        ["done", "nope", "unknown node"],
        ["calc", "no_such_tool_xyz", "unknown tool"],
        ["island", "reachable"],
        ["island", "expression", "parse"],
        ["start -> research", "when"],
        ["t2", "query", "unknown variable"],
        ["loop_b -> loop_a", "cycle"],
    ]
    missing = [e for e in expected if not any(_matches(str(p), e) for p in exc.problems)]
    assert not missing, f"not reported: {missing}\nreported:\n" + "\n".join(map(str, exc.problems))
    assert len(exc.problems) >= len(expected)


def test_structural_problems_are_reported_together_with_config_problems() -> None:
    doc = base()
    add(doc, transform("research", expression="1"))  # duplicate id
    add(doc, {"id": "x", "type": "llm"}, ("start", "x"))  # unknown node type
    add(doc, None, ("research", "ghost"))  # edge to unknown node
    node(doc, "done")["config"] = {"value": "{{ nodes.done.output", "name": "d"}  # does not parse
    add(doc, {"id": "t", "type": "tool", "config": {"tool": "no_such_tool_xyz"}}, ("start", "t"))  # unknown tool
    exc = problems_of(doc)
    expected: list[Expect] = [
        ["research", "duplicate"],
        ["node 'x'", "llm"],
        ["ghost", "unknown"],
        ["done", "value", "parse"],
        ["node 't'", "no_such_tool_xyz"],
    ]
    missing = [e for e in expected if not any(_matches(str(p), e) for p in exc.problems)]
    assert not missing, f"not reported: {missing}\nreported:\n" + "\n".join(map(str, exc.problems))


# --------------------------------------------------------------------------- valid documents, files, text


@tool(name="sem_val_search", replace=True)
def sem_val_search(query: str) -> str:
    """Search (test stand-in for web_search)."""
    return f"results for {query}"


SPEC_EXAMPLE: Doc = {
    "format": "workflow/v1",
    "name": "Research assistant",
    "description": "optional free text",
    "settings": {"model": "gpt-4o-mini", "max_iterations": 10, "timeout_s": 600},
    "inputs": {"query": {"type": "string", "description": "what to research", "default": None}},
    "nodes": [
        {"id": "start", "type": "input"},
        {
            "id": "research",
            "type": "agent",
            "label": "Researcher",
            "position": {"x": 200, "y": 0},
            "config": {"prompt": "Research {{ inputs.query }}", "tools": ["sem_val_search"]},
            "retry": {"attempts": 2, "backoff_s": 1.0},
            "timeout_s": 120,
        },
        {"id": "done", "type": "output", "config": {"value": "{{ nodes.research.output }}"}},
    ],
    "edges": [{"source": "start", "target": "research"}, {"source": "research", "target": "done"}],
}


def test_spec_example_loads() -> None:
    wf = load_workflow(copy.deepcopy(SPEC_EXAMPLE))
    assert wf.name == "Research assistant"
    assert wf.settings.max_iterations == 10
    assert wf.inputs["query"].required is False
    assert len(wf.nodes) == 3 and len(wf.edges) == 2


async def test_spec_example_runs_offline() -> None:
    result = await run_workflow(copy.deepcopy(SPEC_EXAMPLE), {"query": "otters"})
    assert result.status == "completed", result.error
    assert set(result.result or {}) == {"done"}
    assert isinstance(result.result["done"], str) and result.result["done"]


def test_load_workflow_accepts_a_loaded_workflow() -> None:
    wf = load_workflow(base())
    assert load_workflow(wf) is wf


def _same(a: engine.Workflow, b: engine.Workflow) -> None:
    assert a.to_dict() == b.to_dict()


def test_yaml_text_and_yaml_file_load_the_same_as_json(tmp_path: Path) -> None:
    doc = copy.deepcopy(SPEC_EXAMPLE)
    json_text = json.dumps(doc, indent=2)
    yaml_text = yaml.safe_dump(doc, sort_keys=False)
    from_dict = load_workflow(copy.deepcopy(doc))
    _same(from_dict, load_workflow(json_text))
    _same(from_dict, load_workflow(yaml_text))
    for name, text in (("wf.json", json_text), ("wf.yaml", yaml_text), ("wf.yml", yaml_text)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        _same(from_dict, load_workflow(path))
        _same(from_dict, load_workflow(str(path)))


def test_compact_json_text_on_one_line_loads() -> None:
    _same(load_workflow(base()), load_workflow(json.dumps(base())))


def test_invalid_yaml_file_is_validated_like_json(tmp_path: Path) -> None:
    doc = base()
    node(doc, "research")["config"] = {"promt": "x"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert_problem(problems_of(path), ["research", "promt", "unknown"])


def test_malformed_json_text_names_line_and_column() -> None:
    text = '{\n  "format": "workflow/v1",\n  "name": ,\n  "nodes": []\n}'
    exc = problems_of(text)
    assert_problem(exc, ["json", "line 3", "column"])


def test_malformed_json_file_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(
        '{\n  "format": "workflow/v1",\n  "name": "x",\n  "nodes": [\n    {"id": "start" "type": "input"}\n  ]\n}'
    )
    exc = problems_of(path)
    assert_problem(exc, ["broken.json", "json", "line 5", "column"])


def test_malformed_yaml_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("format: workflow/v1\nname: x\nnodes:\n  - id: start\n    type: [input\n")
    exc = problems_of(path)
    assert_problem(exc, ["broken.yaml", "yaml", "line"])


@pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
def test_missing_file_gives_a_clear_problem(tmp_path: Path, as_str: bool) -> None:
    path = tmp_path / "no_such_workflow.json"
    exc = problems_of(str(path) if as_str else path)
    assert_problem(exc, ["no_such_workflow.json", ("no such file", "not found", "does not exist", "cannot read")])


@pytest.mark.parametrize("value", [[1, 2], "just text", 42, None], ids=["list", "str", "int", "null"])
def test_document_that_is_not_an_object_is_rejected(value: Any) -> None:
    problems_of(json.dumps(value) + "\n")


# --------------------------------------------------------------------------- the sandbox


def _single_node_doc(kind: str, field: str, source: Any) -> Doc:
    doc = base()
    if kind == "output":
        node(doc, "done")["config"] = {"value": source}
        doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "research"]
        doc["edges"] = [{"source": "start", "target": "done"}]
        return doc
    doc["nodes"] = [
        {"id": "start", "type": "input"},
        {"id": "evil", "type": kind, "config": {field: source}},
        {"id": "done", "type": "output", "config": {"value": "{{ nodes.evil.output }}"}},
    ]
    doc["edges"] = [{"source": "start", "target": "evil"}, {"source": "evil", "target": "done"}]
    return doc


def _escapes(marker: Path) -> list[tuple[str, str, str]]:
    m = str(marker)
    return [
        ("output", "value", "{{ cycler.__init__.__globals__ }}"),
        ("output", "value", "{{ ''.__class__.__mro__ }}"),
        ("output", "value", "{{ lipsum.__globals__['os'] }}"),
        ("output", "value", f"{{{{ lipsum.__globals__['os'].system('touch {m}') }}}}"),
        ("output", "value", f"x {{{{ cycler.__init__.__globals__.__builtins__.open('{m}', 'w') }}}} y"),
        ("output", "value", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
        ("output", "value", f"{{{{ joiner.__init__.__globals__.os.system('touch {m}') }}}}"),
        ("output", "value", "{{ namespace.__init__.__globals__ }}"),
        ("output", "value", "{{ range.__self__ }}"),
        ("transform", "expression", "''.__class__.__mro__[1].__subclasses__()"),
        ("transform", "expression", f"lipsum.__globals__['os'].system('touch {m}')"),
        ("transform", "template", "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}"),
        ("transform", "expression", "inputs.__class__.__init__.__globals__"),
        ("transform", "expression", "nodes.__class__"),
        ("condition", "expression", "cycler.__init__.__globals__['os'].system('true') == 0"),
        ("transform", "expression", "(inputs.update({'query': 'pwned'}), inputs)[1]"),
        ("transform", "expression", "nodes.start.output.update({'query': 'pwned'})"),
        ("transform", "expression", "nodes.start.output.pop('query')"),
        ("transform", "template", "{% set x = nodes.start.output.clear() %}{{ x }}"),
        ("transform", "expression", "inputs.query.format.__globals__"),
        ("transform", "expression", "'{0.__class__}'.format(inputs)"),
    ]


@pytest.mark.parametrize(
    "case", range(len(_escapes(Path("/x")))), ids=[f"{k}:{s}" for k, _f, s in _escapes(Path("/x"))]
)
async def test_templates_cannot_reach_python(case: int, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    kind, field, source = _escapes(marker)[case]
    doc = _single_node_doc(kind, field, source)
    if kind == "condition":
        doc["edges"][1]["when"] = "default"
    try:
        wf = load_workflow(doc)
    except WorkflowInvalid:
        # rejecting at load time is even better than failing at run time
        assert not marker.exists()
        return
    inputs = {"query": "cats"}
    result = await run_workflow(wf, inputs)
    assert not marker.exists(), "a template ran code in the engine process"
    assert inputs == {"query": "cats"}
    assert result.status == "failed", f"template {source!r} was evaluated: {result.result!r}"
    error = (result.error or "").lower()
    assert any(w in error for w in ("sandbox", "unsafe", "undefined", "refused", "not allowed", "security")), error
    assert result.node_id in ("evil", "done")
    assert result.events[-1].type == "run.failed"


# --------------------------------------------------------------------------- never a raw exception


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("settings"),
        pytest.param("inputs"),
        pytest.param("edges"),
        "description",
    ],
)
def test_null_section_loads_or_is_a_workflow_invalid(key: str) -> None:
    """YAML `settings:` with every line under it commented out is null; never a raw exception."""
    doc: Doc = {
        "format": "workflow/v1",
        "name": "minimal",
        "settings": {},
        "inputs": {},
        "nodes": [{"id": "start", "type": "input"}],
        "edges": [],
        key: None,
    }
    try:
        load_workflow(doc)
    except WorkflowInvalid as exc:
        assert_problem(exc, [key])


def test_file_that_is_not_utf8_gives_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps({**base(), "name": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"))
    assert_problem(problems_of(path), ["latin1.json"])


@pytest.mark.parametrize(
    "breaker",
    [
        pytest.param(lambda d: add(d, {"id": "x", "type": "llm"}, ("start", "x")), id="unknown-type"),
        pytest.param(
            lambda d: add(d, {**transform("x", expression="1"), "retry": {"attempts": 0}}, ("start", "x")),
            id="bad-retry",
        ),
        pytest.param(lambda d: add(d, None, ("research", "ghost")), id="edge-to-unknown-node"),
    ],
)
def test_graph_problems_are_reported_beside_a_broken_node_or_edge(breaker: Callable[[Doc], Doc]) -> None:
    doc = breaker(base())
    add(doc, transform("island", expression="1"), ("island", "done"))
    add(doc, transform("loop_a", expression="1"), ("start", "loop_a"), ("loop_a", "done"))
    add(doc, transform("loop_b", expression="1"), ("loop_a", "loop_b"), ("loop_b", "loop_a"))
    exc = problems_of(doc)
    assert_problem(exc, ["island", "reachable"])
    assert_problem(exc, ["loop_b -> loop_a", "cycle"])
