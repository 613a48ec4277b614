"""Rerun from a node (a fork): which nodes run again, what is reused, and the fork's record.

A fork is a new run of the source run's workflow version with the source's
inputs. It is built on resume's :class:`~engine.executor.Replay`: the replay
holds the source run's finished outputs of every node that does not depend
on the picked node, so the executor reuses them (``node.completed`` with
``"reused": true``, no model or tool call) and runs the rest.

The rule (docs/semantics.md, "Rerun from a node: what runs again"): the picked node and every node
reachable from it along forward edges run again; a loop any of those nodes
belongs to runs again whole, from its first node, with everything reachable
from there (its iterations depend on one another, so none of them can be
kept); a ``map`` node is one node, so picking it reruns all its items. Every
other node keeps its source output, conditions their decisions, skipped
nodes stay skipped. Nodes the source run never finished run as usual.

The run's row keeps the request in ``forked_from`` (:func:`fork_record`): what
``run.started`` carries (:class:`~engine.events.ForkedFrom`: source run, node,
config edit, pinned node names) plus the pinned values under ``"pins"``, so a
queue worker that starts the fork later builds the same replay
(:func:`request_of`, then :func:`fork_replay`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ForkInvalid, NotForkable, Problem
from engine.events import Event, ForkedFrom
from engine.executor import Replay, replay_from_events
from engine.model import Workflow
from engine.plan import Plan
from engine.statuses import FINISHED_RUN
from engine.store import Store
from tools.plain import to_plain

FINISHED = FINISHED_RUN  # the runs that may be rerun from a node
PINS = "pins"  # the key of the pinned values in a run row's forked_from (not in the event's)


@dataclass(frozen=True, slots=True)
class ForkRequest:
    """What to rerun: the picked node, pinned outputs of nodes that are reused, a config edit of the picked node."""

    node: str
    outputs: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None


def rerun_set(plan: Plan, node_id: str) -> set[int]:
    """Indices of the nodes that run again when rerunning from ``node_id`` (see the module docstring)."""
    forward: dict[int, list[int]] = {}
    for edge in plan.edges:
        if not edge.back:
            forward.setdefault(edge.source, []).append(edge.target)
    rerun: set[int] = set()
    todo = [plan.by_id[node_id]]
    while todo:
        while todo:
            i = todo.pop()
            if i not in rerun:
                rerun.add(i)
                todo.extend(forward.get(i, ()))
        for loop in plan.loops:  # a loop touched anywhere reruns whole, from its header
            if loop.body & rerun and loop.header not in rerun:
                todo.append(loop.header)
    return rerun


def rerun_nodes(workflow: Workflow, node_id: str) -> list[str]:
    """The ids of the nodes that would run again, in document order (unknown node: ForkInvalid)."""
    plan: Plan = workflow.plan
    if node_id not in plan.by_id:
        raise ForkInvalid([_unknown(node_id, plan)])
    chosen = rerun_set(plan, node_id)
    return [node.id for node in plan.nodes if node.index in chosen]


def with_config(document: Mapping[str, Any], node_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The document with ``config``'s keys replacing those of ``node_id``'s config (the others are kept)."""
    edited = copy.deepcopy(dict(document))
    for node in edited.get("nodes") or []:
        if isinstance(node, dict) and node.get("id") == node_id:
            node["config"] = {**(node.get("config") or {}), **dict(config)}
    return edited


def check_request(plan: Plan, request: ForkRequest) -> set[int]:
    """Every problem of the request at once; returns the rerun set.

    Raises:
        ForkInvalid: the picked node is unknown; a pinned node is unknown or reruns; a pinned value is not JSON.
    """
    problems: list[Problem] = []
    if request.node not in plan.by_id:
        raise ForkInvalid([_unknown(request.node, plan)])
    rerun = rerun_set(plan, request.node)
    for name, value in (request.outputs or {}).items():
        where = f"output '{name}'"
        if name not in plan.by_id:
            problems.append(Problem(where, f"no node '{name}' in this workflow version"))
        elif plan.by_id[name] in rerun:
            problems.append(
                Problem(
                    where,
                    f"node '{name}' runs again in a rerun from '{request.node}', so its output cannot be pinned; "
                    "pin only nodes it does not depend on",
                )
            )
        else:
            try:
                json.dumps(to_plain(value, "raise"), allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                problems.append(Problem(where, "the pinned value must be JSON"))
    if problems:
        raise ForkInvalid(problems)
    return rerun


def fork_replay(
    plan: Plan, source_events: list[Event], request: ForkRequest, forked_from: ForkedFrom
) -> Replay:
    """The replay of a fork: the source's finished outputs of every reused node, pins applied.

    Raises:
        ForkInvalid: see :func:`check_request`; also a pinned node that never completed in the source run.
    """
    rerun = check_request(plan, request)
    source = replay_from_events(source_events).outputs
    outputs = {key: value for key, value in source.items() if key[0] in plan.by_id and plan.by_id[key[0]] not in rerun}
    problems: list[Problem] = []
    for name, value in (request.outputs or {}).items():
        keys = [key for key in outputs if key[0] == name]
        if not keys:
            reason = f"node '{name}' did not complete in the source run, so there is no output to pin"
            problems.append(Problem(f"output '{name}'", reason))
        for key in keys:  # every execution (a node in a loop ran several times)
            outputs[key] = to_plain(value, "raise")
    if problems:
        raise ForkInvalid(problems)
    return Replay(outputs=outputs, skipped=set(), last_seq=0, forked_from=forked_from, reused=set(outputs))


def resumed_fork_replay(plan: Plan, log: list[Event], store: Store, record: Mapping[str, Any]) -> Replay:
    """The replay of a fork that stopped (a crash, a lost worker, a failure) and goes on from its own ``log``.

    A fork emits its reused executions as it reaches them, and its log is committed in batches: one that
    stopped early may not hold all of them yet (only ``run.started``, after a crash in its first
    milliseconds). Those are taken again from the source run in ``store`` (``record`` is the run row's
    ``forked_from``) and emitted as reused when reached, rather than run and paid for again. Without the
    source's events (the source run was deleted since) the log alone is replayed.
    """
    replay = replay_from_events(log)
    source = str(record["run_id"])
    if store.get_run(source) is None:
        return replay
    source_events = store.events(source)
    request, forked_from = request_of(record)
    try:
        reusable = fork_replay(plan, source_events, request, forked_from).outputs
    except ForkInvalid:  # the request fitted when the fork started; if it no longer does, the log is what is left
        return replay
    missing = {key: value for key, value in reusable.items() if key not in replay.outputs}
    replay.outputs.update(missing)
    replay.reused = set(missing)
    replay.began -= replay.reused
    return replay


def fork_record(forked_from: ForkedFrom, outputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run row's ``forked_from``: the event's record plus the pinned values under ``"pins"`` (when any)."""
    record: dict[str, Any] = dict(forked_from)
    if outputs:
        record[PINS] = {name: to_plain(value, "raise") for name, value in outputs.items()}
    return record


def request_of(record: Mapping[str, Any]) -> tuple[ForkRequest, ForkedFrom]:
    """From a run row's ``forked_from`` (:func:`fork_record`): the request, and what ``run.started`` carries."""
    forked_from: ForkedFrom = {"run_id": str(record["run_id"]), "node": str(record["node"])}
    if record.get("config") is not None:
        forked_from["config"] = dict(record["config"])
    if record.get("outputs"):
        forked_from["outputs"] = list(record["outputs"])
    config = forked_from.get("config")
    request = ForkRequest(node=forked_from["node"], outputs=dict(record.get(PINS) or {}), config=config)
    return request, forked_from


def _unknown(node_id: str, plan: Plan) -> Problem:
    ids = [node.id for node in plan.nodes]
    known = ", ".join(ids[:30]) + (f" and {len(ids) - 30} more" if len(ids) > 30 else "")
    return Problem(f"node '{node_id}'", f"no such node in this workflow version (its nodes: {known})")


__all__ = [
    "FINISHED",
    "ForkInvalid",
    "ForkRequest",
    "NotForkable",
    "PINS",
    "check_request",
    "fork_record",
    "fork_replay",
    "request_of",
    "resumed_fork_replay",
    "rerun_nodes",
    "rerun_set",
    "with_config",
]
