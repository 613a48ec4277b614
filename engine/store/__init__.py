"""The durable store: workflows with versions, runs, node executions and every event.

``Store`` is the read side plus the calls that go through its one
:class:`~engine.store.writer.Writer`. Readers open their own sessions;
writes during runs are queued to the writer thread, which starts on the first
such write: a store opened only to read (``python -m engine runs``, a
:class:`~engine.reader.RunReader` over a URL) runs no thread.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, bindparam, delete, false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from engine.events import APPROVAL_EVENT_TYPES, Event
from engine.model import MAX_NAME_CHARS, Workflow, document_digest

if TYPE_CHECKING:
    from engine.config import Settings
from engine.store.db import StoreError, StoreUrlInvalid, database_url, open_engine, sqlite_path
from engine.store.tables import DraftRow, EventRow, NodeExecutionRow, RunRow, WorkflowRow, WorkflowVersionRow
from engine.store.writer import EVENTS, NODES, RUNS, WriteFailed, Writer

__all__ = [
    "DraftRow",
    "RunRow",
    "NodeExecutionRow",
    "Store",
    "StoreError",
    "StoreUrlInvalid",
    "WorkflowRef",
    "process_owner",
    "owner_alive",
    "read_events",
]


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """A saved workflow version."""

    id: str
    version: int
    name: str
    created: bool  # True when this save added a version


# A workflow's id, latest version, archived flag and that version's digest, by name: built once
# (building a SQLAlchemy statement costs more than running it).
_LATEST_DIGEST = (
    select(
        col(WorkflowRow.id),
        col(WorkflowRow.latest_version),
        col(WorkflowRow.archived),
        col(WorkflowVersionRow.digest),
    )
    .join(
        WorkflowVersionRow,
        and_(
            col(WorkflowVersionRow.workflow_id) == col(WorkflowRow.id),
            col(WorkflowVersionRow.version) == col(WorkflowRow.latest_version),
        ),
    )
    .where(col(WorkflowRow.name) == bindparam("name"))
)


SAVED_FRESH_S = 0.5  # how long Store._save trusts its last read of a workflow's latest digest


def _digest(document: dict[str, Any]) -> str:
    return document_digest(document)


def process_owner() -> str:
    """This process as ``host:pid:start-time``, so a reused pid is not mistaken for us."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def owner_alive(owner: str, *, heartbeat_at: float | None, stale_after_s: float = 60.0) -> bool:
    """Whether the process that owns a running run is still there."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        return _start_time(int(pid_text)) == started and started != "?"
    return heartbeat_at is not None and time.time() - heartbeat_at < stale_after_s


def read_events(conn: Connection, run_id: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
    """:meth:`Store.events` on the caller's connection (queue mode reads a run's log inside its transaction)."""
    query = (
        select(EVENTS.c.seq, EVENTS.c.run_id, EVENTS.c.ts, EVENTS.c.type, EVENTS.c.node_id, EVENTS.c.data)
        .where(EVENTS.c.run_id == run_id, EVENTS.c.seq > after)
        .order_by(EVENTS.c.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return [Event(*row) for row in conn.execute(query)]


class Store:
    """Open (and migrate) the database at ``url`` (default: ``DATABASE_URL`` or ``$DATA_DIR/studio.db`` of
    ``settings``, whose default is the environment's: ``engine.config``)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        data_dir: str | Path | None = None,
        on_write_failure: WriteFailed | None = None,
        settings: Settings | None = None,
        pool_size: int | None = None,
    ):
        if settings is None:
            from engine.config import Settings  # the default for direct use: the environment's settings

            settings = Settings.from_env()
        self.url = database_url(url, data_dir, settings=settings)
        self.engine = open_engine(self.url, Path(data_dir or settings.data_dir).resolve(), pool_size=pool_size)
        self._on_write_failure = on_write_failure
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()
        # name -> (digest, ref, when read): an unchanged submit within SAVED_FRESH_S of the last read skips it
        self._saved: dict[str, tuple[str, WorkflowRef, float]] = {}

    @property
    def writer(self) -> Writer:
        """The one writer; its thread starts on first use (reading needs none)."""
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = Writer(self.engine, on_failure=self._on_write_failure)
        return self._writer

    @property
    def sqlite_file(self) -> Path | None:
        return sqlite_path(self.url)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()

    # --- workflows --------------------------------------------------------------------

    def save_workflow(self, document: dict[str, Any]) -> WorkflowRef:
        """Save a validated document under its name; a changed document adds a version."""
        return self._save(lambda: document, str(document["name"]), _digest(document))

    def save_loaded(self, workflow: Workflow) -> WorkflowRef:
        """:meth:`save_workflow` for a loaded workflow: its digest is computed once per Workflow, and
        its document is built only when it is a new version (an unchanged submit stays cheap)."""
        return self._save(workflow.to_dict, workflow.name, workflow.digest)

    def _save(self, document: Callable[[], dict[str, Any]], name: str, digest: str) -> WorkflowRef:
        if len(name) > MAX_NAME_CHARS:  # PostgreSQL refuses it with a driver error; SQLite would keep it
            raise StoreError(
                f"the workflow's name is {len(name)} characters long; shorten it to {MAX_NAME_CHARS} at most"
            )
        # A burst of submits of one unchanged document reads its latest digest once: the read releases the
        # GIL, and with the runtime's loop and the writer busy each re-acquisition waited up to a switch
        # interval (500 submits spent 0.5 s there). A read at most SAVED_FRESH_S old is no staler than the
        # race every read has with another process's save; this process's own saves and archives forget it.
        started = time.monotonic()
        known = self._saved.get(name)
        if known is not None and known[0] == digest and started - known[2] < SAVED_FRESH_S:
            return known[1]
        with self.engine.connect() as connection:  # the common case, unchanged: one prepared read, no ORM
            found = connection.execute(_LATEST_DIGEST, {"name": name}).first()
        if found is not None and found.digest == digest and not found.archived:
            ref = WorkflowRef(found.id, found.latest_version, name, False)
            self._saved[name] = (digest, ref, started)
            return ref
        self._saved.pop(name, None)
        now = time.time()
        try:
            return self._save_workflow(document, name, digest, now)
        except IntegrityError:  # another writer created this name or version first: read theirs
            return self._save_workflow(document, name, digest, now)

    def _save_workflow(
        self, make_document: Callable[[], dict[str, Any]], name: str, digest: str, now: float
    ) -> WorkflowRef:
        with Session(self.engine) as session:
            row = session.execute(select(WorkflowRow).where(col(WorkflowRow.name) == name)).scalars().first()
            if row is None:
                row = WorkflowRow(id=uuid.uuid4().hex[:12], name=name, latest_version=1, created_at=now, updated_at=now)
                session.add(row)
                session.add(
                    WorkflowVersionRow(
                        workflow_id=row.id, version=1, digest=digest, document=make_document(), created_at=now
                    )
                )
                session.commit()
                return WorkflowRef(row.id, 1, name, True)
            latest = session.execute(  # the digest alone: the saved document is not read or decoded
                select(col(WorkflowVersionRow.digest)).where(
                    col(WorkflowVersionRow.workflow_id) == row.id, col(WorkflowVersionRow.version) == row.latest_version
                )
            ).scalar()
            if latest == digest:
                if row.archived:
                    row.archived = False
                    session.add(row)
                    session.commit()
                return WorkflowRef(row.id, row.latest_version, name, False)
            row.archived = False
            row.latest_version += 1
            row.updated_at = now
            session.add(
                WorkflowVersionRow(
                    workflow_id=row.id,
                    version=row.latest_version,
                    digest=digest,
                    document=make_document(),
                    created_at=now,
                )
            )
            session.add(row)
            version = row.latest_version
            session.commit()
            return WorkflowRef(row.id, version, name, True)

    @staticmethod
    def _version_row(session: Session, workflow_id: str, version: int) -> WorkflowVersionRow | None:
        query = select(WorkflowVersionRow).where(
            col(WorkflowVersionRow.workflow_id) == workflow_id, col(WorkflowVersionRow.version) == version
        )
        return session.execute(query).scalars().first()

    def get_workflow(
        self, workflow_id: str, version: int | None = None
    ) -> tuple[WorkflowRow, WorkflowVersionRow] | None:
        with Session(self.engine) as session:
            row = session.get(WorkflowRow, workflow_id)
            if row is None:
                return None
            found = self._version_row(session, workflow_id, version or row.latest_version)
            return (row, found) if found is not None else None

    def list_workflows(self, *, include_archived: bool = False) -> list[WorkflowRow]:
        query = select(WorkflowRow).order_by(col(WorkflowRow.updated_at).desc())
        if not include_archived:
            query = query.where(col(WorkflowRow.archived) == false())
        with Session(self.engine) as session:
            return list(session.execute(query).scalars())

    def archive_workflow(self, workflow_id: str) -> bool:
        """Hide a workflow from lists (its versions stay: runs refer to them). False if unknown."""
        self._saved.clear()  # an unchanged submit un-archives: it must read the flag again
        with Session(self.engine) as session:
            row = session.get(WorkflowRow, workflow_id)
            if row is None:
                return False
            row.archived = True
            session.add(row)
            session.commit()
        return True

    def find_workflow(self, name: str) -> WorkflowRow | None:
        with Session(self.engine) as session:
            return session.execute(select(WorkflowRow).where(col(WorkflowRow.name) == name)).scalars().first()

    def workflow_versions(self, workflow_id: str) -> list[WorkflowVersionRow]:
        with Session(self.engine) as session:
            query = (
                select(WorkflowVersionRow)
                .where(col(WorkflowVersionRow.workflow_id) == workflow_id)
                .order_by(col(WorkflowVersionRow.version))
            )
            return list(session.execute(query).scalars())

    # --- drafts (the Builder's unsaved edits) ------------------------------------------------

    def save_draft(self, key: str, document: dict[str, Any], *, source: str = "new") -> None:
        """Keep ``document`` (valid or not) as the draft under ``key``, replacing the one before."""
        now = time.time()
        with Session(self.engine) as session:
            row = session.get(DraftRow, key)
            if row is None:
                row = DraftRow(key=key, source=source, document=document, updated_at=now)
            else:
                row.document, row.source, row.updated_at = document, source, now
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another tab created it first: ours is newer
                session.rollback()
                session.merge(DraftRow(key=key, source=source, document=document, updated_at=now))
                session.commit()

    def get_draft(self, key: str) -> DraftRow | None:
        with Session(self.engine) as session:
            return session.get(DraftRow, key)

    def drop_draft(self, key: str) -> bool:
        """Forget the draft under ``key``; False when there was none."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(DraftRow.__table__).where(DraftRow.__table__.c.key == key))  # type: ignore[attr-defined]
        return bool(done.rowcount)

    def list_drafts(self, *, limit: int = 50) -> list[DraftRow]:
        """Drafts, newest first."""
        query = select(DraftRow).order_by(col(DraftRow.updated_at).desc()).limit(limit)
        with Session(self.engine) as session:
            return list(session.execute(query).scalars())

    # --- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        workflow: WorkflowRef,
        inputs: dict[str, Any],
        owner: str,
        forked_from: dict[str, Any] | None = None,
        created_at: float | None = None,
    ) -> None:
        """Queue the run's row ahead of its events (same writer, so it lands first).

        ``forked_from``: a rerun's source (``run_id``, ``node``, its ``config`` edit, the pinned ``outputs``' names
        and their values, ``pins``: :func:`engine.fork.fork_record`).
        ``created_at``: when the run was created (default: now).
        """
        now = time.time() if created_at is None else created_at
        self.writer.put_run(
            run_id,
            {
                "run_id": run_id,
                "workflow_id": workflow.id,
                "workflow_version": workflow.version,
                "workflow_name": workflow.name,
                "inputs": inputs,
                "status": "running",
                "created_at": now,
                "owner": owner,
                "heartbeat_at": now,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "tokens_estimated": False,
                "failed_tokens": 0,
                "last_seq": 0,
                "resumed": 0,
                "forked_from": forked_from,
            },
        )

    def claim_run(self, run_id: str, owner: str) -> None:
        """Queue: this process now runs ``run_id`` (resume)."""
        self.writer.put_statement(
            update(RUNS)
            .where(RUNS.c.run_id == run_id)
            .values(
                status="running", owner=owner, heartbeat_at=time.time(), finished_at=None, resumed=RUNS.c.resumed + 1
            ),
            run_id,
        )

    def take_waiting(self, run_id: str, owner: str, *, status: str = "running") -> bool:
        """Move a ``waiting`` run to ``status`` at once (not queued): True for the one caller that did.

        Two decisions (or a decision and a cancel) racing from two processes: exactly one wins.
        """
        with self.engine.begin() as conn:
            result = conn.execute(
                update(RUNS)
                .where(RUNS.c.run_id == run_id, RUNS.c.status == "waiting")
                .values(status=status, owner=owner, heartbeat_at=time.time())
            )
        return bool(result.rowcount == 1)

    def waiting_runs(self, *, limit: int = 1000, after: str = "") -> list[str]:
        """Ids of runs waiting for a decision, in id order, the first ``limit`` past ``after`` (the timeout
        sweep pages through them all)."""
        query = (
            select(RUNS.c.run_id)
            .where(RUNS.c.status == "waiting", RUNS.c.run_id > after)
            .order_by(RUNS.c.run_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [str(r) for r in conn.execute(query).scalars()]

    def heartbeat(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        if ids:
            self.writer.put_statement(update(RUNS).where(RUNS.c.run_id.in_(ids)).values(heartbeat_at=time.time()))

    def append(self, event: Event) -> None:
        """Queue one event (and its effect on the run and node rows)."""
        self.writer.put_event(event)

    def flush(self, timeout: float = 30.0) -> None:
        self.writer.flush(timeout)

    def get_run(self, run_id: str) -> RunRow | None:
        with Session(self.engine) as session:
            return session.get(RunRow, run_id)

    def list_runs(self, *, limit: int = 50, status: str | None = None, workflow_id: str | None = None) -> list[RunRow]:
        query = select(RunRow)
        if status:
            query = query.where(col(RunRow.status) == status)
        if workflow_id:
            query = query.where(col(RunRow.workflow_id) == workflow_id)
        query = query.order_by(col(RunRow.created_at).desc()).limit(limit)
        with Session(self.engine) as session:
            return list(session.execute(query).scalars())

    def run_values(
        self,
        columns: Sequence[str],
        *,
        limit: int = 50,
        status: str | None = None,
        workflow_id: str | None = None,
    ) -> list[Any]:
        """The newest ``limit`` runs as rows of ``columns`` (in that order), newest first.

        What :meth:`list_runs` finds, as plain rows (SQLAlchemy Core, no ORM objects): the reader
        builds its records from them. ``ix_runs_created`` serves the order (migration 0007_reads).
        """
        query = select(*(RUNS.c[name] for name in columns))
        if status:
            query = query.where(RUNS.c.status == status)
        if workflow_id:
            query = query.where(RUNS.c.workflow_id == workflow_id)
        query = query.order_by(RUNS.c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def events(self, run_id: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's committed events with ``seq`` greater than ``after``, in order (at most ``limit``).

        Read as plain rows (SQLAlchemy Core): ORM objects cost 7x the raw driver's time at 100,000 events.
        """
        with self.engine.connect() as conn:
            return read_events(conn, run_id, after=after, limit=limit)

    def approval_events(self, run_ids: Sequence[str]) -> dict[str, list[Event]]:
        """The ``approval.requested`` and ``approval.decided`` events of each of ``run_ids``, in order, by run.

        What the approval timeout sweep needs of every waiting run, in one query: not the whole logs
        (a waiting agent run holds thousands of token events; the sweep runs every heartbeat).
        """
        found: dict[str, list[Event]] = {run_id: [] for run_id in run_ids}
        if not found:
            return found
        query = (
            select(EVENTS.c.seq, EVENTS.c.run_id, EVENTS.c.ts, EVENTS.c.type, EVENTS.c.node_id, EVENTS.c.data)
            .where(EVENTS.c.run_id.in_(list(found)), EVENTS.c.type.in_(APPROVAL_EVENT_TYPES))
            .order_by(EVENTS.c.run_id, EVENTS.c.seq)
        )
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                found[row.run_id].append(Event(*row))
        return found

    def node_executions(self, run_id: str) -> list[NodeExecutionRow]:
        query = (
            select(NodeExecutionRow)
            .where(col(NodeExecutionRow.run_id) == run_id)
            .order_by(col(NodeExecutionRow.started_seq))
        )
        with Session(self.engine) as session:
            return list(session.execute(query).scalars())

    def node_execution_values(self, run_id: str, columns: Sequence[str]) -> list[Any]:
        """The run's node executions as rows of ``columns`` (in that order), in the order they started.

        What :meth:`node_executions` finds, as plain rows (SQLAlchemy Core, no ORM objects): the reader
        builds its records from them (ORM objects cost 10x the raw driver's time at 50,000 rows).
        """
        query = (
            select(*(NODES.c[name] for name in columns)).where(NODES.c.run_id == run_id).order_by(NODES.c.started_seq)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def delete_run(self, run_id: str) -> bool:
        """Delete a finished run with its events and node rows. Returns False if unknown or still running."""
        with Session(self.engine) as session:
            row = session.get(RunRow, run_id)
            if row is None or row.status == "running":
                return False
        with self.engine.begin() as conn:
            conn.execute(delete(EventRow.__table__).where(EventRow.__table__.c.run_id == run_id))  # type: ignore[attr-defined]
            conn.execute(delete(NodeExecutionRow.__table__).where(NodeExecutionRow.__table__.c.run_id == run_id))  # type: ignore[attr-defined]
            conn.execute(delete(RUNS).where(RUNS.c.run_id == run_id))
        return True

    def mark_interrupted(self) -> list[str]:
        """Mark runs whose owning process is gone as ``interrupted``; returns their ids."""
        with Session(self.engine) as session:
            running = list(session.execute(select(RunRow).where(col(RunRow.status) == "running")).scalars())
        dead = [r.run_id for r in running if not owner_alive(r.owner, heartbeat_at=r.heartbeat_at)]
        if dead:
            with self.engine.begin() as conn:
                conn.execute(
                    update(RUNS)
                    .where(RUNS.c.run_id.in_(dead), RUNS.c.status == "running")
                    .values(status="interrupted", error="the process running it stopped before it finished")
                )
        return dead

    def count_runs(self) -> int:
        with Session(self.engine) as session:
            return int(session.execute(select(func.count()).select_from(RunRow)).scalar_one())
