"""The one status vocabulary: the words a run and a node execution can be in.

Every layer uses these words: the executor's result, the store's ``runs`` and
``node_executions`` rows, the read API, the HTTP API, the CLI and the pages
(which may map a word to a colour or an icon, never to another word).

A run ends ``completed`` (its event is ``run.completed``); a node execution
ends ``succeeded``. The two words differ on purpose: a run that completed may
hold nodes that were skipped, and a node's outcome reads as success or failure
(n8n and Airflow say "success", GitHub Actions "success"; the event stays
``node.completed``, its moment rather than its outcome). Rows written before
this word was settled said ``completed`` for nodes; migration ``0005_statuses``
rewrites them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

# queued: submitted in queue mode, waiting for a worker (docs/queue.md)
# waiting: an approval node waits for a person's decision; nothing runs until one comes (docs/semantics.md)
RunStatus = Literal["queued", "running", "waiting", "completed", "failed", "cancelled", "interrupted"]
# pending: not reached yet; waiting: an approval node whose request is open (a person decides). Only the
# pages show these two: nothing is stored for pending, and a waiting approval's execution row says running.
NodeStatus = Literal["pending", "running", "waiting", "succeeded", "failed", "skipped", "cancelled"]

RUN_STATUSES: Final[tuple[RunStatus, ...]] = get_args(RunStatus)
NODE_STATUSES: Final[tuple[NodeStatus, ...]] = get_args(NodeStatus)

# A run in one of these has ended and may be rerun from a node (engine.fork).
FINISHED_RUN: Final[tuple[RunStatus, ...]] = ("completed", "failed", "cancelled")
# A run in one of these may be resumed where it stopped.
RESUMABLE_RUN: Final[tuple[RunStatus, ...]] = ("interrupted", "failed")
# A node execution in one of these has ended, whatever its outcome.
FINISHED_NODE: Final[frozenset[NodeStatus]] = frozenset({"succeeded", "failed", "skipped", "cancelled"})

# The status a run's terminal event gives it.
RUN_ENDED: Final[Mapping[str, RunStatus]] = {
    "run.completed": "completed",
    "run.failed": "failed",
    "run.cancelled": "cancelled",
}
# The status a run's pause event gives it (not an end: a decision continues the run).
RUN_PAUSED: Final[Mapping[str, RunStatus]] = {"run.waiting": "waiting"}


def node_failed_status(data: Mapping[str, Any]) -> NodeStatus:
    """The status a ``node.failed`` event gives its execution: cancelled when the run stopped it."""
    return "cancelled" if data.get("cancelled") else "failed"
