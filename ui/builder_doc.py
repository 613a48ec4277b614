"""Edits of a workflow/v1 document made by the Builder page (no Streamlit here).

Every function takes the document as a plain dict and changes it in place or
returns a new one, so the page's callbacks stay one-liners and the tests can
check each edit without a browser.

Renaming: renaming a node (or an input) rewrites the edges and every
``nodes.<old>`` / ``nodes['<old>']`` (``inputs.<old>``) reference in the
templates and expressions of every node, so a rename never breaks a workflow.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import tools
from engine import WorkflowInvalid, load_workflow
from engine.errors import Problem
from engine.lint import workflow_warnings
from engine.literals import condition_literals
from engine.model import FORMAT, ID_PATTERN, NODE_TYPES
from ui.flow import coordinates

_ID = re.compile(ID_PATTERN)
_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
X_GAP, Y_GAP = 260, 120
PALETTE: tuple[str, ...] = NODE_TYPES
INPUT_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "object", "array")
WHEN_CHOICES: tuple[str, ...] = ("true", "false", "default")


# --- reading and writing documents ----------------------------------------------------


def new_document(name: str = "Untitled workflow", *, timeout_s: float | None = None) -> dict[str, Any]:
    """A small valid workflow: one input node wired to one output node (and a run timeout if given)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "description": "",
        "inputs": {"query": {"type": "string", "description": "what to work on"}},
        "nodes": [
            {"id": "start", "type": "input", "label": "Start", "position": {"x": 0, "y": 0}},
            {
                "id": "result",
                "type": "output",
                "label": "Result",
                "position": {"x": X_GAP, "y": 0},
                "config": {"value": "{{ inputs.query }}"},
            },
        ],
        "edges": [{"source": "start", "target": "result"}],
    }
    if timeout_s is not None:
        doc["settings"] = {"timeout_s": float(timeout_s)}
    return doc


def parse_document(data: bytes | str, filename: str = "workflow.json") -> dict[str, Any]:
    """Parse an imported JSON or YAML file into a document dict.

    Raises:
        ValueError: with a message for the user (bad encoding, syntax, not an object).
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{filename} is not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    is_yaml = Path(filename).suffix.lower() in (".yaml", ".yml")
    try:
        parsed = yaml.safe_load(text) if is_yaml else json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{filename} is not valid YAML: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{filename} must hold one JSON object (a workflow), got {type(parsed).__name__}")  # noqa: TRY004 - bad file content
    if not isinstance(parsed.get("nodes", []), list) or not isinstance(parsed.get("edges", []), list):
        raise ValueError(f"{filename}: 'nodes' and 'edges' must be lists")  # noqa: TRY004 - bad file content
    if not all(isinstance(n, dict) and isinstance(n.get("id"), str) for n in parsed.get("nodes", [])):
        raise ValueError(f"{filename}: every node needs a string 'id'")
    if not all(
        isinstance(e, dict) and isinstance(e.get("source"), str) and isinstance(e.get("target"), str)
        for e in parsed.get("edges", [])
    ):
        raise ValueError(f"{filename}: every edge needs string 'source' and 'target'")
    return parsed


def export_json(doc: dict[str, Any]) -> str:
    """The document as the JSON file the download button hands out."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def file_name(doc: dict[str, Any]) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", str(doc.get("name") or "workflow")).strip("_").lower()
    return f"{slug or 'workflow'}.json"


def problems(doc: dict[str, Any]) -> list[Problem]:
    """Every validation problem of the document (empty when it loads)."""
    try:
        load_workflow(doc)
    except WorkflowInvalid as exc:
        return exc.problems
    except Exception as exc:  # noqa: BLE001 - a half-edited document must never break the page
        return [Problem("document", f"cannot be checked: {exc}")]
    return []


def warnings(doc: dict[str, Any]) -> list[Problem]:
    """Warnings about a valid document (a branch reaching no output): they never block a run."""
    try:
        return workflow_warnings(load_workflow(doc))
    except Exception:  # noqa: BLE001 - an invalid document has problems instead
        return []


def normalized(doc: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps for a valid document (the same form ``Runtime.submit`` saves)."""
    return load_workflow(doc).to_dict()


_WHERE_NODE = re.compile(r"node '([^']+)'")


def problem_nodes(found: list[Problem]) -> set[str]:
    """Node ids named by problems (to outline them on the canvas)."""
    return {m.group(1) for p in found for m in [_WHERE_NODE.search(p.where)] if m}


def unique_name(name: str, taken: Callable[[str], bool]) -> str:
    """``name``, or ``name 2``, ``name 3``... whichever is not taken."""
    if not taken(name):
        return name
    base = re.sub(r" \d+$", "", name)
    n = 2
    while taken(f"{base} {n}"):
        n += 1
    return f"{base} {n}"


# --- nodes ---------------------------------------------------------------------------


def find_node(doc: dict[str, Any], node_id: str) -> dict[str, Any] | None:
    return next((n for n in doc.get("nodes", []) if n.get("id") == node_id), None)


def unique_id(doc: dict[str, Any], base: str) -> str:
    ids = {n.get("id") for n in doc.get("nodes", [])}
    n = 1
    while f"{base}_{n}" in ids:
        n += 1
    return f"{base}_{n}"


def ref(kind: str, name: str) -> str:
    """``nodes.x`` / ``inputs.x``, or the bracket form for names with '-'."""
    return f"{kind}.{name}" if _SIMPLE.match(name) else f"{kind}['{name}']"


def default_config(node_type: str, doc: dict[str, Any], after: str | None = None) -> dict[str, Any]:
    """A config that validates as it is and points at the node it follows (or the first input)."""
    inputs = doc.get("inputs") or {}
    first = next(iter(inputs), None)
    source = f"{ref('nodes', after)}.output" if after else ref("inputs", first) if first else "inputs"
    if node_type == "agent":
        return {"prompt": f"Work on this and answer concisely:\n\n{{{{ {source} }}}}"}
    if node_type == "tool":
        specs = tools.list_tools()
        if not specs:
            return {"tool": "", "args": {}}
        spec = specs[0]
        return {"tool": spec.name, "args": default_args(spec.parameters, source)}
    if node_type == "condition":
        return {"expression": f"{source} is not none"}
    if node_type == "transform":
        return {"expression": source}
    if node_type == "map":
        lists = [name for name, spec in inputs.items() if isinstance(spec, dict) and spec.get("type") == "array"]
        items = f"{ref('nodes', after)}.output" if after else ref("inputs", lists[0]) if lists else "[1, 2, 3]"
        return {"items": items, "node": {"type": "transform", "config": {"expression": "item"}}, "concurrency": 8}
    if node_type == "output":
        return {"value": f"{{{{ {source} }}}}"}
    return {}


def default_args(schema: dict[str, Any], source: str = "inputs") -> dict[str, Any]:
    """Required string arguments of a tool filled with a template of ``source``."""
    props = schema.get("properties") or {}
    return {
        name: f"{{{{ {source} }}}}"
        for name in schema.get("required") or []
        if (props.get(name) or {}).get("type") == "string"
    }


Edge = tuple[str, str, "str | None"]  # (source, target, when)


def add_node(doc: dict[str, Any], node_type: str, after: str | None = None, *, into: Edge | None = None) -> str:
    """Add a node of ``node_type`` and return its id.

    * ``into`` an edge: the node goes into it (``source -> new -> target``; the edge's ``when`` stays on
      the edge from the source).
    * ``after`` a node with exactly one outgoing edge: the same, into that edge.
    * ``after`` a condition: a new branch, wired with the next ``when`` value (:func:`next_when`).
    * ``after`` any other node (none or several outgoing edges): a new branch from it.
    * ``after`` an output, or nothing: an unwired node.

    Inserting before a node whose templates read the source's output (``{{ nodes.<source>.output }}``,
    or an output node echoing the first input) makes them read the new node's output instead.
    """
    if node_type not in NODE_TYPES:
        raise ValueError(f"unknown node type {node_type!r}")
    prev = find_node(doc, into[0]) if into else find_node(doc, after) if after else None
    edge = find_edge(doc, into[0], into[1], into[2]) if into else None
    if prev is not None and into is None:
        outgoing = [e for e in doc.get("edges", []) if e.get("source") == prev["id"]]
        if prev.get("type") == "output":
            prev = None  # outputs end a branch
        elif len(outgoing) == 1 and prev.get("type") != "condition":
            edge = outgoing[0]
    nxt = find_node(doc, edge["target"]) if edge is not None else None
    node_id = unique_id(doc, node_type)
    node: dict[str, Any] = {"id": node_id, "type": node_type, "label": node_type.capitalize()}
    feeder = _data_source(doc, prev)
    config = default_config(node_type, doc, feeder["id"] if feeder else None)
    if config:
        node["config"] = config
    node["position"] = _free_position(doc, prev, shift_from=nxt["id"] if nxt else None)
    doc.setdefault("nodes", []).append(node)
    edges = doc.setdefault("edges", [])
    if edge is not None and nxt is not None and prev is not None:
        edge["target"] = node_id  # source -> new (keeps its when)
        onward: dict[str, Any] = {"source": node_id, "target": nxt["id"]}
        if node_type == "condition":
            onward["when"] = next_when(doc, node_id) or "true"
        edges.append(onward)
        if node_type != "condition":  # a condition's output is its route, not the data
            _follow(nxt, feeder or prev, doc, node_id)
    elif prev is not None:
        wired: dict[str, Any] = {"source": prev["id"], "target": node_id}
        if prev.get("type") == "condition":
            when = next_when(doc, prev["id"])
            if when is None:
                return node_id  # every value is taken: the user wires it
            wired["when"] = when
        edges.append(wired)
    return node_id


def _data_source(doc: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any] | None:
    """The node whose output flows on from ``node``: itself, or for a condition (whose output is the route
    it took) the node before it."""
    seen: set[str] = set()
    while node is not None and node.get("type") == "condition" and node["id"] not in seen:
        seen.add(node["id"])
        before = next((e["source"] for e in doc.get("edges", []) if e.get("target") == node["id"]), None)
        if before is None:
            return node
        node = find_node(doc, before)
    return node


def _follow(nxt: dict[str, Any], prev: dict[str, Any], doc: dict[str, Any], new_id: str) -> None:
    """Point the templates of ``nxt`` that read ``prev``'s output at ``new_id``'s output instead."""
    readings = [f"{{{{ {ref('nodes', prev['id'])}.output }}}}"]
    if prev.get("type") == "input" and nxt.get("type") == "output":
        first = next(iter(doc.get("inputs") or {}), None)
        if first is not None:
            readings.append(f"{{{{ {ref('inputs', first)} }}}}")
    if isinstance(nxt.get("config"), dict):
        for old in readings:
            reading = f"{{{{ {ref('nodes', new_id)}.output }}}}"
            nxt["config"], _ = _rewrite(nxt["config"], re.compile(re.escape(old)), reading)


def condition_values(doc: dict[str, Any], condition_id: str) -> list[str]:
    """The ``when`` values a condition's expression names (``== 'long'``, ``in [...]``, ``'a' if … else 'b'``)."""
    node = find_node(doc, condition_id) or {}
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    return condition_literals(str(config.get("expression") or ""))


def next_when(doc: dict[str, Any], condition_id: str) -> str | None:
    """The first ``when`` no edge of the condition uses yet: its expression's values (else true, false),
    then default; None when all are taken."""
    used = {e.get("when") for e in doc.get("edges", []) if e.get("source") == condition_id}
    values = condition_values(doc, condition_id) or ["true", "false"]
    return next((v for v in [*values, "default"] if v not in used), None)


def _free_position(
    doc: dict[str, Any], prev: dict[str, Any] | None, *, shift_from: str | None = None
) -> dict[str, float]:
    if shift_from is not None and prev is not None:
        _shift_right(doc, shift_from, prev["id"], coordinates(prev.get("position"))[0] + X_GAP)
    taken = [coordinates(n.get("position")) for n in doc.get("nodes", [])]
    if prev is not None:
        x, y = coordinates(prev.get("position"))
        x += X_GAP
    else:
        x = max((px for px, _ in taken), default=-X_GAP) + X_GAP
        y = 0.0
    while any(abs(px - x) < 100 and abs(py - y) < 60 for px, py in taken):
        y += Y_GAP
    return {"x": x, "y": y}


def _shift_right(doc: dict[str, Any], start: str, stop: str, from_x: float) -> None:
    """Make room for an inserted node: ``start`` and what follows it (up to ``stop``) move right by a column
    when they stand at ``from_x`` or further right."""
    succ: dict[str, list[str]] = {}
    for e in doc.get("edges", []):
        succ.setdefault(str(e.get("source")), []).append(str(e.get("target")))
    seen, todo = {start}, [start]
    while todo:
        for after in succ.get(todo.pop(), []):
            if after not in seen and after != stop:
                seen.add(after)
                todo.append(after)
    for node in doc.get("nodes", []):
        if node.get("id") in seen:
            x, y = coordinates(node.get("position"))
            if x >= from_x - 1:
                node["position"] = {"x": x + X_GAP, "y": y}


def delete_node(doc: dict[str, Any], node_id: str) -> None:
    doc["nodes"] = [n for n in doc.get("nodes", []) if n.get("id") != node_id]
    doc["edges"] = [e for e in doc.get("edges", []) if node_id not in (e.get("source"), e.get("target"))]


def check_new_id(doc: dict[str, Any], old: str, new: str) -> str | None:
    """Why ``new`` cannot replace ``old`` as a node id, or None."""
    if new == old:
        return None
    if not _ID.match(new):
        return "ids start with a letter or _, then letters, digits, _ or - (no spaces)"
    if find_node(doc, new) is not None:
        return f"another node is already called '{new}'"
    return None


def _ref_pattern(kind: str, old: str) -> re.Pattern[str]:
    name = re.escape(old)
    return re.compile(rf"(?<![A-Za-z0-9_.]){kind}\s*(?:\.\s*{name}(?![A-Za-z0-9_-])|\[\s*(['\"]){name}\1\s*\])")


def _rewrite(value: Any, pattern: re.Pattern[str], replacement: str) -> tuple[Any, int]:
    if isinstance(value, str):
        return pattern.subn(replacement.replace("\\", "\\\\"), value)
    if isinstance(value, dict):
        total = 0
        out = {}
        for k, v in value.items():
            out[k], n = _rewrite(v, pattern, replacement)
            total += n
        return out, total
    if isinstance(value, list):
        total = 0
        items = []
        for v in value:
            new, n = _rewrite(v, pattern, replacement)
            items.append(new)
            total += n
        return items, total
    return value, 0


def _rewrite_configs(doc: dict[str, Any], kind: str, old: str, new: str) -> int:
    pattern = _ref_pattern(kind, old)
    total = 0
    for node in doc.get("nodes", []):
        if "config" in node:
            node["config"], n = _rewrite(node["config"], pattern, ref(kind, new))
            total += n
    return total


def rename_node(doc: dict[str, Any], old: str, new: str) -> int:
    """Rename a node: its edges and every ``nodes.<old>`` reference follow. Returns references rewritten.

    Raises:
        ValueError: the new id is malformed or taken.
    """
    reason = check_new_id(doc, old, new)
    if reason:
        raise ValueError(reason)
    node = find_node(doc, old)
    if node is None or new == old:
        return 0
    node["id"] = new
    for edge in doc.get("edges", []):
        for end in ("source", "target"):
            if edge.get(end) == old:
                edge[end] = new
    return _rewrite_configs(doc, "nodes", old, new)


# --- edges ---------------------------------------------------------------------------


def find_edge(doc: dict[str, Any], source: str, target: str, when: str | None = None) -> dict[str, Any] | None:
    candidates = [e for e in doc.get("edges", []) if e.get("source") == source and e.get("target") == target]
    exact = [e for e in candidates if e.get("when") == when]
    return (exact or candidates or [None])[0]


def delete_edge(doc: dict[str, Any], source: str, target: str, when: str | None = None) -> None:
    edge = find_edge(doc, source, target, when)
    if edge is not None:
        doc["edges"] = [e for e in doc.get("edges", []) if e is not edge]


def set_edge_when(doc: dict[str, Any], source: str, target: str, old: str | None, new: str | None) -> None:
    edge = find_edge(doc, source, target, old)
    if edge is None:
        return
    if new is None or new == "":
        edge.pop("when", None)
    else:
        edge["when"] = new


# --- inputs schema -------------------------------------------------------------------


def add_input(doc: dict[str, Any]) -> str:
    inputs = doc.setdefault("inputs", {})
    n = 1
    while f"input_{n}" in inputs:
        n += 1
    name = f"input_{n}"
    inputs[name] = {"type": "string", "description": ""}
    return name


def rename_input(doc: dict[str, Any], old: str, new: str) -> int:
    """Rename a declared input, keeping its place; ``inputs.<old>`` references follow.

    Raises:
        ValueError: the new name is malformed or taken.
    """
    inputs = doc.get("inputs") or {}
    if new == old or old not in inputs:
        return 0
    if not _ID.match(new):
        raise ValueError("input names start with a letter or _, then letters, digits, _ or -")
    if new in inputs:
        raise ValueError(f"another input is already called '{new}'")
    doc["inputs"] = {(new if k == old else k): v for k, v in inputs.items()}
    return _rewrite_configs(doc, "inputs", old, new)


def delete_input(doc: dict[str, Any], name: str) -> None:
    (doc.get("inputs") or {}).pop(name, None)


def default_text(spec: dict[str, Any]) -> str:
    """An input's default as the text the editor shows ('' when it has none)."""
    if "default" not in spec:
        return ""
    value = spec["default"]
    if spec.get("type", "string") == "string" and isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def parse_value(input_type: str, text: str) -> Any:
    """A typed value from the text of a form field (strings as typed, the rest as JSON).

    Raises:
        ValueError: the text is not valid JSON or not of the type.
    """
    if input_type == "string":
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg})") from None
    checks: dict[str, Callable[[Any], bool]] = {
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    if value is not None and input_type in checks and not checks[input_type](value):
        raise ValueError(f"must be {'an' if input_type[0] in 'aeiou' else 'a'} {input_type}")
    return value


def copy_of(doc: dict[str, Any], name: str) -> dict[str, Any]:
    new = copy.deepcopy(doc)
    new["name"] = name
    return new
