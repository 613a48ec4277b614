"""Warnings about a valid workflow: things that run but are probably a mistake.

Validation (:mod:`engine.validate`) refuses what cannot run; a warning is
kept apart from those problems because it never blocks a run. The one
warning so far: a branch that reaches no output node, whose work is not part
of the run's result (a node added and never wired on, a condition branch
left open). Side effects such as a tool writing a file still happen, so it
may be deliberate.
"""

from __future__ import annotations

from collections import defaultdict

from engine.errors import Problem
from engine.model import Workflow


def workflow_warnings(workflow: Workflow) -> list[Problem]:
    """Warnings about a loaded workflow, each naming its node (``node 'x'``)."""
    return _dead_ends(workflow)


def _dead_ends(workflow: Workflow) -> list[Problem]:
    """Nodes from which no output node can be reached, reported where such a branch ends."""
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    for edge in workflow.edges:
        succ[edge.source].append(edge.target)
        pred[edge.target].append(edge.source)
    reaches = {n.id for n in workflow.nodes if n.type == "output"}
    todo = list(reaches)
    while todo:  # walk backwards from every output
        node_id = todo.pop()
        for before in pred[node_id]:
            if before not in reaches:
                reaches.add(before)
                todo.append(before)
    if not any(n.type == "output" for n in workflow.nodes):
        return [Problem("nodes", "no output node: the run's result will be empty (add an output node at the end)")]
    stranded = [n.id for n in workflow.nodes if n.id not in reaches]
    ends = [node_id for node_id in stranded if not succ[node_id]] or stranded  # a loop without exit: all of it
    return [
        Problem(
            f"node '{node_id}'",
            "leads nowhere: no output node comes after it, so its result is not part of the run's result "
            "(connect it on to an output, or delete it)",
        )
        for node_id in ends
    ]
