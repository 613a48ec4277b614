"""The execution plan: a workflow compiled once so runs never re-read its text.

Compiling finds the back-edges (edges whose target is an ancestor of their
source on a depth-first walk from the input node), the loop each back-edge
closes and the nodes in its body, counts every node's forward predecessors,
and decides for each forward edge that leaves a loop which loop's exit it
waits for. The executor then runs on integer indices and counters.

Loop semantics (documented in docs/semantics.md):

* the body of the loop closed by back-edge ``s -> h`` is every node on a
  forward path from ``h`` to ``s``;
* an edge from a body node to a node outside the body is delivered when the
  loop exits, with the state of the last iteration, so nodes after a loop run
  once, after it;
* a loop exits when ``s`` finishes (or is skipped) without taking the
  back-edge.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem
from engine.model import ROUTING_TYPES


@dataclass(slots=True, eq=False)
class LoopPlan:
    """One loop, closed by the back-edge ``source -> header``."""

    index: int
    back_edge: int
    header: int
    source: int
    body: frozenset[int]
    members: tuple[int, ...] = ()  # the body, sorted (for resets)
    nested: tuple[int, ...] = ()  # loops strictly inside this one
    body_preds: dict[int, int] = field(default_factory=dict)  # node -> forward preds inside the body
    outside_in_edges: dict[int, tuple[int, ...]] = field(default_factory=dict)  # node -> edges from outside


@dataclass(slots=True, eq=False)
class PlanEdge:
    index: int
    source: int
    target: int
    when: str | None
    back: bool = False
    exit_loop: int | None = None  # the loop whose exit delivers this edge


@dataclass(slots=True, eq=False)
class PlanNode:
    """A node ready to run: its compiled spec and its place in the graph."""

    index: int
    id: str
    type: str
    spec: Any  # the node kind's compiled config
    attempts: int
    backoff_s: float
    timeout_s: float | None
    out_edges: tuple[int, ...] = ()  # forward edges
    back_edge: int | None = None
    forward_preds: int = 0
    innermost_loop: int | None = None
    closes_loop: int | None = None  # the loop this node is the back-edge source of
    routes: dict[str, tuple[int, ...]] | None = None  # condition: when -> edges (forward and back)
    default_routes: tuple[int, ...] = ()  # condition: edges taken when no other matches


@dataclass(slots=True, eq=False)
class Plan:
    nodes: list[PlanNode]
    edges: list[PlanEdge]
    loops: list[LoopPlan]
    input_index: int
    by_id: dict[str, int]
    output_names: dict[int, str]


@dataclass(slots=True)
class Graph:
    """Just the shape, for analysis: node ids, types and edges as index pairs."""

    ids: list[str]
    types: list[str]
    edges: list[tuple[int, int]]


def analyse(graph: Graph, input_index: int, problems: list[Problem]) -> tuple[list[bool], list[LoopPlan]]:
    """Classify edges (True: a back edge) and find loops; append the problems found to ``problems``."""
    n = len(graph.ids)
    succ: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(graph.edges):
        succ[u].append((e, v))
    reached = _reachable(succ, input_index)
    for i in range(n):
        if not reached[i]:
            problems.append(Problem(f"node '{graph.ids[i]}'", "is not reachable from the input node"))
    back = _back_edges(succ, input_index, len(graph.edges))
    _cycles_without_condition(graph, succ, back, problems)
    loops: list[LoopPlan] = []
    sources: dict[int, int] = {}
    for e, (u, v) in enumerate(graph.edges):
        if not back[e]:
            continue
        if u in sources:
            problems.append(
                Problem(
                    f"node '{graph.ids[u]}'",
                    "closes more than one loop; give each loop its own condition node",
                )
            )
            continue
        sources[u] = e
        body = _loop_body(graph, back, v, u)
        loops.append(LoopPlan(index=len(loops), back_edge=e, header=v, source=u, body=frozenset(body)))
    for a in loops:
        for b in loops:
            nested = a.body <= b.body or b.body <= a.body
            if a.index < b.index and a.body & b.body and not nested:
                problems.append(
                    Problem(
                        f"edge {graph.ids[a.source]} -> {graph.ids[a.header]}",
                        f"its loop overlaps the loop closed by {graph.ids[b.source]} -> {graph.ids[b.header]} "
                        "without one containing the other; nest loops or keep them apart",
                    )
                )
    return back, loops


def _cycles_without_condition(
    graph: Graph, succ: list[list[tuple[int, int]]], back: list[bool], problems: list[Problem]
) -> None:
    """Report every cycle that does not pass through a condition node (it could never end).

    Every cycle holds at least one back-edge ``u -> v``; the cycle avoids every
    condition node exactly when ``u`` is reachable from ``v`` through
    non-condition nodes only (along any edges). Checking only that the loop
    body holds *some* condition is not enough: a body can have a conditional
    path beside an unconditional one. Each cycle found is reported once, by the
    back-edge that closes it, as its shortest such path.
    """
    seen: set[frozenset[int]] = set()
    for e, (u, v) in enumerate(graph.edges):
        if not back[e] or graph.types[u] in ROUTING_TYPES or graph.types[v] in ROUTING_TYPES:
            continue
        parent: dict[int, int] = {v: v}
        todo = deque([v])
        while todo and u not in parent:
            x = todo.popleft()
            for _e, y in succ[x]:
                if y not in parent and graph.types[y] not in ROUTING_TYPES:
                    parent[y] = x
                    todo.append(y)
        if u not in parent:
            continue
        path = [u]
        while path[-1] != v:
            path.append(parent[path[-1]])
        path.reverse()  # v ... u
        key = frozenset(path)
        if key in seen:
            continue
        seen.add(key)
        cycle = " -> ".join(graph.ids[i] for i in [*path, v])
        problems.append(
            Problem(
                f"edge {graph.ids[u]} -> {graph.ids[v]}",
                f"closes the cycle {cycle}, which has no condition node, so it could never end; "
                "route the cycle through a condition node that decides when to leave it",
            )
        )


def _reachable(succ: list[list[tuple[int, int]]], start: int) -> list[bool]:
    seen = [False] * len(succ)
    seen[start] = True
    todo = deque([start])
    while todo:
        u = todo.popleft()
        for _e, v in succ[u]:
            if not seen[v]:
                seen[v] = True
                todo.append(v)
    return seen


def _back_edges(succ: list[list[tuple[int, int]]], start: int, n_edges: int) -> list[bool]:
    """Edges into a node still on the depth-first stack (document order decides ties)."""
    back = [False] * n_edges
    state = [0] * len(succ)  # 0 new, 1 on stack, 2 done
    stack: list[tuple[int, int]] = [(start, 0)]
    state[start] = 1
    while stack:
        u, i = stack[-1]
        if i < len(succ[u]):
            stack[-1] = (u, i + 1)
            e, v = succ[u][i]
            if state[v] == 1:
                back[e] = True
            elif state[v] == 0:
                state[v] = 1
                stack.append((v, 0))
        else:
            state[u] = 2
            stack.pop()
    return back


def _loop_body(graph: Graph, back: list[bool], header: int, source: int) -> set[int]:
    """Nodes on a forward path from ``header`` to ``source``."""
    fwd: dict[int, list[int]] = {}
    rev: dict[int, list[int]] = {}
    for e, (u, v) in enumerate(graph.edges):
        if not back[e]:
            fwd.setdefault(u, []).append(v)
            rev.setdefault(v, []).append(u)
    down = _closure(fwd, header)
    up = _closure(rev, source)
    return down & up


def _closure(adj: dict[int, list[int]], start: int) -> set[int]:
    seen = {start}
    todo = [start]
    while todo:
        for v in adj.get(todo.pop(), ()):
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def link(nodes: list[PlanNode], edges: list[PlanEdge], loops: list[LoopPlan]) -> None:
    """Fill in predecessor counts, loop membership and exit loops (in place)."""
    by_size = sorted(loops, key=lambda loop: len(loop.body))
    for loop in loops:
        loop.nested = tuple(o.index for o in loops if o is not loop and o.body < loop.body)
    for node in nodes:
        containing = [loop for loop in by_size if node.index in loop.body]
        node.innermost_loop = containing[0].index if containing else None
    out: dict[int, list[int]] = {}
    for edge in edges:
        if edge.back:
            nodes[edge.source].back_edge = edge.index
            continue
        out.setdefault(edge.source, []).append(edge.index)
        nodes[edge.target].forward_preds += 1
        leaving = [loop for loop in by_size if edge.source in loop.body and edge.target not in loop.body]
        edge.exit_loop = leaving[-1].index if leaving else None  # the outermost loop it leaves
    for node in nodes:
        node.out_edges = tuple(out.get(node.index, ()))
        if node.type in ROUTING_TYPES:
            routes: dict[str, list[int]] = {}
            for edge in edges:
                if edge.source == node.index and edge.when is not None:
                    routes.setdefault(edge.when, []).append(edge.index)
            node.default_routes = tuple(routes.pop("default", ()))
            node.routes = {when: tuple(found) for when, found in routes.items()}
    for loop in loops:
        nodes[loop.source].closes_loop = loop.index
        loop.members = tuple(sorted(loop.body))
        for member in loop.body:
            inside = [e for e in edges if not e.back and e.target == member]
            loop.body_preds[member] = sum(1 for e in inside if e.source in loop.body)
            loop.outside_in_edges[member] = tuple(e.index for e in inside if e.source not in loop.body)
