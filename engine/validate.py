"""Loading a workflow: every problem at once, then one compiled plan.

Validation walks the raw document part by part (settings, each input, each
node, each edge, the graph, every template) and collects problems instead of
stopping at the first, so a user fixes a file in one pass. A document that
passes becomes a :class:`~engine.model.Workflow` carrying its
:class:`~engine.plan.Plan`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import Problem, WorkflowInvalid
from engine.inputs import _a, _describe, _matches
from engine.model import (
    FORMAT,
    ID_PATTERN,
    MAX_NAME_CHARS,
    NODE_TYPES,
    ROUTING_TYPES,
    Edge,
    InputSpec,
    Node,
    Settings,
    Workflow,
)
from engine.nodes import KINDS, compile_config
from engine.nodes.base import BASE_SCOPE, Compiler
from engine.plan import Graph, Plan, PlanEdge, PlanNode, analyse, link
from tools import ToolRegistry, default_registry

TOP_LEVEL_KEYS = ("format", "name", "description", "settings", "inputs", "nodes", "edges")
_ID = re.compile(ID_PATTERN)


def load_workflow(source: str | Path | Mapping[str, Any] | Workflow, *, tools: ToolRegistry | None = None) -> Workflow:
    """Load, validate and compile a workflow from a path, a JSON/YAML text, or a dict.

    Tool names are checked against ``tools`` (default: :func:`tools.default_registry`).
    An already loaded :class:`Workflow` is returned as it is.

    Raises:
        WorkflowInvalid: listing every problem found, each naming its node or edge.
    """
    if isinstance(source, Workflow):
        return source
    raw = _read(source) if not isinstance(source, Mapping) else source
    return validate_document(raw, tools=tools)


def _read(source: str | Path) -> Any:
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise WorkflowInvalid([Problem(str(path), f"cannot read the file: {exc.strerror or exc}")]) from None
        except UnicodeDecodeError as exc:
            raise WorkflowInvalid(
                [Problem(str(path), f"is not UTF-8 text (byte {exc.start}): save it as UTF-8 JSON or YAML")]
            ) from None
        yaml_file = path.suffix.lower() in (".yaml", ".yml")
        return _parse(text, str(path), yaml_file)
    return _parse(source, "document", source.lstrip()[:1] not in "{[")


def _parse(text: str, where: str, yaml_file: bool) -> Any:
    try:
        return yaml.safe_load(text) if yaml_file else json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowInvalid(
            [Problem(where, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except yaml.YAMLError as exc:
        raise WorkflowInvalid([Problem(where, f"is not valid YAML: {exc}")]) from None


# Validated workflows by content hash: submitting the same document again (a page, the API, a
# schedule) reuses its compiled plan instead of validating every node again. The key is the hash of
# the document's pickle (C-fast, and type-exact: 1, 1.0, True and "1" differ, as they do to the
# validator) and the tool registry's generation (a tool registered or removed since is a miss).
# A Workflow is never changed after loading, so one object serves every run of it.
_CACHE_SIZE = 128
_cache: OrderedDict[tuple[bytes, int], Workflow] = OrderedDict()
_cache_lock = threading.Lock()


def _content_key(raw: Mapping[str, Any]) -> bytes | None:
    try:
        return hashlib.blake2b(pickle.dumps(raw, protocol=pickle.HIGHEST_PROTOCOL), digest_size=20).digest()
    except Exception:  # noqa: BLE001 - a value pickle cannot take: validate it without the cache
        return None


def clear_validation_cache() -> None:
    """Forget every validated document (tests; a changed node type)."""
    with _cache_lock:
        _cache.clear()


def validate_document(raw: Any, *, tools: ToolRegistry | None = None) -> Workflow:
    """Validate a parsed document; see :func:`load_workflow`.

    A document equal to one validated before against the same tools is not validated again:
    the Workflow compiled then is returned.
    """
    registry = tools if tools is not None else default_registry()
    content = _content_key(raw) if isinstance(raw, Mapping) else None
    if content is None:
        return _validate(raw, registry)
    key = (content, registry.generation)  # read before validating: a tool changed meanwhile is a miss later
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    workflow = _validate(raw, registry)
    with _cache_lock:
        _cache[key] = workflow
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return workflow


def _validate(raw: Any, registry: ToolRegistry) -> Workflow:
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        raise WorkflowInvalid([Problem("document", f"must be a JSON object, got {type(raw).__name__}")])
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            problems.append(Problem(f"key '{key}'", f"unknown top-level key; allowed: {', '.join(TOP_LEVEL_KEYS)}"))
    if raw.get("format") != FORMAT:
        got = "missing" if "format" not in raw else f"{raw.get('format')!r}"
        problems.append(Problem("format", f"must be '{FORMAT}' (got {got})"))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "is required: a non-empty string"))
    elif len(name) > MAX_NAME_CHARS:
        problems.append(Problem("name", f"is {len(name)} characters long; at most {MAX_NAME_CHARS}"))
    if not isinstance(raw.get("description", ""), str):
        problems.append(Problem("description", "must be a string"))
    settings = _part(Settings, raw.get("settings") or {}, "settings", problems)
    inputs = _inputs(raw.get("inputs") or {}, problems)
    nodes, identified, nodes_ok = _nodes(raw.get("nodes"), problems)
    edges = _edges(raw.get("edges") or [], problems)
    plan = _plan(nodes, edges or [], identified, inputs, problems, registry, graph_ok=nodes_ok and edges is not None)
    if problems or plan is None or settings is None or edges is None:
        raise WorkflowInvalid(problems or [Problem("document", "is not a workflow")])
    parts: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "settings": settings,
        "inputs": inputs,
        "nodes": nodes,
        "edges": edges,
    }
    if "description" in raw:
        parts["description"] = raw["description"]
    workflow = Workflow.model_validate(parts)
    workflow._plan = plan
    return workflow


def _part(model: type[BaseModel], value: Any, where: str, problems: list[Problem]) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            message = "unknown key (check the spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(Problem(f"{where}.{loc}" if loc else where, message))
        return None


def _inputs(raw: Any, problems: list[Problem]) -> dict[str, InputSpec]:
    if not isinstance(raw, Mapping):
        problems.append(Problem("inputs", "must be an object of name -> {type, description, default}"))
        return {}
    inputs: dict[str, InputSpec] = {}
    for name, spec in raw.items():
        if not _ID.match(str(name)):
            problems.append(Problem(f"inputs.{name}", "input names must match [A-Za-z_][A-Za-z0-9_-]*"))
        parsed = _part(InputSpec, spec, f"inputs.{name}", problems)
        if parsed is not None:
            # The same check as run inputs get; an explicit null default (optional input) always passes.
            if not parsed.required and not _matches(parsed, parsed.default):
                problems.append(
                    Problem(
                        f"inputs.{name}.default",
                        f"must be {_a(parsed.type)} like the input (or null), got {_describe(parsed.default)}",
                    )
                )
            inputs[str(name)] = parsed
    return inputs


def _nodes(raw: Any, problems: list[Problem]) -> tuple[list[Node], dict[str, str | None], bool]:
    """Parse each node on its own.

    Returns the valid nodes, every identified node id with its type (None when
    unknown) so the graph can still be checked, and whether every node parsed.
    """
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("nodes", "must be a non-empty list of nodes"))
        return [], {}, False
    nodes: list[Node] = []
    seen: dict[str, str | None] = {}
    all_ok = True
    for i, item in enumerate(raw):
        node_id = item.get("id") if isinstance(item, Mapping) else None
        where = f"node '{node_id}'" if isinstance(node_id, str) else f"nodes[{i}]"
        if isinstance(node_id, str) and node_id in seen:
            problems.append(Problem(where, "duplicate node id; ids must be unique"))
            all_ok = False
            continue
        node_type = item.get("type") if isinstance(item, Mapping) else None
        if isinstance(node_id, str):
            seen[node_id] = node_type if node_type in NODE_TYPES else None
        if isinstance(item, Mapping) and "type" in item and node_type not in NODE_TYPES:
            problems.append(Problem(where, f"unknown node type {node_type!r}; known: {', '.join(NODE_TYPES)}"))
            if isinstance(node_id, str) and not _ID.match(node_id):
                problems.append(Problem(where, "id must match [A-Za-z_][A-Za-z0-9_-]*"))
            all_ok = False
            continue
        parsed = _part(Node, item, where, problems)
        if parsed is None:
            all_ok = False
        else:
            nodes.append(parsed)
    return nodes, seen, all_ok


def _edges(raw: Any, problems: list[Problem]) -> list[Edge] | None:
    if not isinstance(raw, list):
        problems.append(Problem("edges", "must be a list of {source, target} objects"))
        return None
    edges: list[Edge] = []
    seen: set[tuple[str, str, str | None]] = set()
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and isinstance(item.get("when"), bool):
            item = {**item, "when": "true" if item["when"] else "false"}
        where = f"edge {item.get('source')} -> {item.get('target')}" if isinstance(item, Mapping) else f"edges[{i}]"
        parsed = _part(Edge, item, where, problems)
        if parsed is None:
            continue
        key = (parsed.source, parsed.target, parsed.when)
        if key in seen:
            problems.append(Problem(parsed.label, "duplicate edge"))
            continue
        seen.add(key)
        edges.append(parsed)
    return edges


def _plan(
    nodes: list[Node],
    edges: list[Edge],
    identified: dict[str, str | None],
    inputs: dict[str, InputSpec],
    problems: list[Problem],
    registry: ToolRegistry,
    *,
    graph_ok: bool,
) -> Plan | None:
    """Compile every node and check the graph; a plan only when nothing is wrong."""
    specs = _compile_nodes(nodes, set(identified), inputs, problems, registry)
    names = _output_names(nodes, specs, problems)
    ids = list(identified)
    index = {node_id: i for i, node_id in enumerate(ids)}
    types = [identified[i] or "?" for i in ids]
    inputs_nodes = [i for i, t in enumerate(types) if t == "input"]
    if len(inputs_nodes) != 1:
        found = ", ".join(ids[i] for i in inputs_nodes) or "none"
        problems.append(Problem("nodes", f"a workflow needs exactly one input node (found: {found})"))
    plan_edges, edges_ok = _check_edges(edges, index, types, problems)
    _check_decisions(nodes, specs, edges, problems)
    if not inputs_nodes:
        return None
    graph = Graph(ids=ids, types=types, edges=[(e.source, e.target) for e in plan_edges])
    back, loops = analyse(graph, inputs_nodes[0], problems)  # with several inputs: checked from the first
    if not (graph_ok and edges_ok) or len(nodes) != len(ids) or len(inputs_nodes) != 1:
        return None
    for edge in plan_edges:
        edge.back = back[edge.index]
    plan_nodes = [
        PlanNode(
            index=i,
            id=node.id,
            type=node.type,
            spec=specs[i],
            attempts=node.retry.attempts,
            backoff_s=node.retry.backoff_s,
            timeout_s=node.timeout_s,
        )
        for i, node in enumerate(nodes)
    ]
    link(plan_nodes, plan_edges, loops)
    return Plan(
        nodes=plan_nodes, edges=plan_edges, loops=loops, input_index=inputs_nodes[0], by_id=index, output_names=names
    )


def _check_decisions(nodes: list[Node], specs: list[Any], edges: list[Edge], problems: list[Problem]) -> None:
    """Every ``when`` on an edge leaving an approval node is one of its options (or ``default``)."""
    options = {node.id: specs[i].options for i, node in enumerate(nodes) if node.type == "approval" and specs[i]}
    for edge in edges:
        allowed = options.get(edge.source)
        if allowed is not None and edge.when is not None and edge.when != "default" and edge.when not in allowed:
            problems.append(
                Problem(edge.label, f"when '{edge.when}' is not an option of '{edge.source}' ({', '.join(allowed)})")
            )


def _output_names(nodes: list[Node], specs: list[Any], problems: list[Problem]) -> dict[int, str]:
    names: dict[int, str] = {}
    for i, node in enumerate(nodes):
        if node.type == "output":
            out_name = specs[i].name if specs[i] is not None and specs[i].name else node.id
            if out_name in names.values():
                problems.append(
                    Problem(f"node '{node.id}'", f"output name '{out_name}' is used by another output node")
                )
            names[i] = out_name
    return names


def _compile_nodes(
    nodes: list[Node], ids: set[str], inputs: dict[str, InputSpec], problems: list[Problem], registry: ToolRegistry
) -> list[Any]:
    node_ids = frozenset(ids)
    input_names = frozenset(inputs)
    specs: list[Any] = []
    for node in nodes:
        compiler = Compiler(f"node '{node.id}'", problems, BASE_SCOPE, node_ids, input_names, tools=registry)
        specs.append(compile_config(node.type, node.config, compiler) if node.type in KINDS else None)
    return specs


def _check_edges(
    edges: list[Edge], index: dict[str, int], types: list[str], problems: list[Problem]
) -> tuple[list[PlanEdge], bool]:
    """Edges between known nodes, as plan edges; and whether every edge was usable."""
    plan_edges: list[PlanEdge] = []
    ok = True
    for edge in edges:
        missing = [end for end in (edge.source, edge.target) if end not in index]
        for end in missing:
            problems.append(Problem(edge.label, f"refers to unknown node '{end}'"))
        if missing:
            ok = False
            continue
        source_type = types[index[edge.source]]
        if types[index[edge.target]] == "input":
            problems.append(Problem(edge.label, "the input node cannot have incoming edges"))
        if source_type in ROUTING_TYPES and edge.when is None:
            problems.append(
                Problem(edge.label, f'an edge from {_a(source_type)} node needs "when" (a value, or "default")')
            )
        if source_type not in (*ROUTING_TYPES, "?") and edge.when is not None:
            problems.append(Problem(edge.label, 'only edges from a condition or approval node carry "when"'))
        plan_edges.append(
            PlanEdge(index=len(plan_edges), source=index[edge.source], target=index[edge.target], when=edge.when)
        )
    return plan_edges, ok
