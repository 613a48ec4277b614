"""``python -m engine worker``: a Procrastinate worker process that runs queued runs on the engine.

Each job names one run. The worker *claims* it: in one statement the run goes
``queued -> running`` and its ``lease_epoch`` goes up by one; the store's writer then
commits this run's batches only while the epoch is still that one (the fence, see
:mod:`engine.store.writer`). It replays the committed events exactly as a resume does
(finished nodes reloaded, the interrupted node restarted and marked) and executes.
A rerun from a node (a fork) with no events of its own yet starts as local mode's does:
its replay is built from the source run's events and the request kept in the row's
``forked_from`` (:func:`engine.fork.request_of`, :func:`engine.fork.fork_replay`), so the
nodes it reuses emit ``"reused": true`` and call nothing; once it has events, it resumes
from its own log like any run.

Failover: Procrastinate's workers heartbeat; every worker also sweeps, every
``QUEUE_SWEEP_S``, for jobs of workers whose heartbeat is older than ``QUEUE_STALLED_S``
(``get_stalled_jobs``). For each, in one transaction with the job's and the run's rows
locked: a run that has finished keeps its status (its job is closed as succeeded, never
"crashed"); a running one gets a ``log`` event naming the dead worker and a new epoch
(the dead or paused worker can commit nothing more); then the job is retried on
Procrastinate (``retry_job``) and the run is ``queued`` again for any worker, up to
``MAX_AUTO_RESUMES`` times (default 3). After that the run stays ``interrupted`` until
a manual resume.

Cancel: Procrastinate's abort cancels the job's asyncio task; the engine catches it and
ends the run ``cancelled`` (its existing cancel path).

Approvals: a run that reaches ``waiting`` ends its job (succeeded); the run holds no job
while it waits, and the sweep leaves a waiting run alone (it closes a dead worker's job
of one as succeeded, as for a finished run). A decision queues a new job
(:mod:`engine.queue.approvals`). On every sweep tick the worker also applies due approval
timeouts (one decision per run; of several workers, one wins each).

Settings (read once at start with the others, ``settings.queue``: :class:`engine.config.QueueSettings`):
``QUEUE_HEARTBEAT_S`` (default 10), ``QUEUE_STALLED_S`` (30), ``QUEUE_SWEEP_S`` (10), ``MAX_AUTO_RESUMES`` (3).
The worker hands its :class:`~engine.config.Settings` to every run it executes (model, tools, memory), with the
Settings page's values saved in the database read when the run starts (:mod:`engine.store.shared_settings`); its
memory is the one every worker shares (:mod:`engine.queue.shared`: PostgreSQL and a Chroma server).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector, sql
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager
from sqlalchemy import case, select, update

from engine.config import QueueSettings, Settings
from engine.errors import EngineError, StoreError, WorkflowInvalid
from engine.events import Event
from engine.executor import Replay, execute, replay_from_events
from engine.fork import fork_replay, request_of, resumed_fork_replay, with_config
from engine.llm import default_chat_model
from engine.model import Workflow
from engine.queue.approvals import apply_due_timeouts
from engine.queue.jobs import QUEUE, TASK, call, conninfo, has_schema, run_jobs
from engine.queue.mode import QueueModeInvalid, require_postgres
from engine.queue.shared import shared_memory
from engine.store import Store, process_owner
from engine.store.shared_settings import apply_shared, load_shared
from engine.store.writer import RUNS, apply_events
from engine.validate import load_workflow

logger = logging.getLogger("engine.queue.worker")

FINISHED = ("completed", "failed", "cancelled")
# PostgreSQL connections a worker holds, at any concurrency (issue 16: <= 8 for two workers):
# Procrastinate's pool: a job holds no connection while its run executes (the run writes through the store), so
# one serves fetching, finishing, heartbeats and abort polling (plus the connection its LISTEN keeps, outside it);
PROCRASTINATE_POOL = 1
# the store's: the writer thread's, and one for the event loop's short reads and claims (the sweep's thread
# waits for one of them)
STORE_POOL = 2
# The writer thread and the event loop both wait on PostgreSQL: at Python's default 5 ms a thread back from its
# socket waits up to that long for the GIL, at every round trip (commit -> NOTIFY latency, docs/benchmarks.md)
SWITCH_INTERVAL_S = 0.0005
DOCUMENTS_KEPT = 256  # saved workflow versions a worker keeps (oldest read forgotten first)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How often a worker beats and sweeps, and when a silent worker counts as dead."""

    concurrency: int = 4
    heartbeat_s: float = 10.0
    stalled_s: float = 30.0
    sweep_s: float = 10.0
    max_auto_resumes: int = 3

    @classmethod
    def of(cls, queue: QueueSettings, concurrency: int) -> WorkerSettings:
        """From the settings' queue part (``QUEUE_HEARTBEAT_S``, ``QUEUE_STALLED_S``, ``QUEUE_SWEEP_S``,
        ``MAX_AUTO_RESUMES``, checked when read) and ``--concurrency``."""
        return cls(
            concurrency=concurrency,
            heartbeat_s=queue.heartbeat_s,
            stalled_s=queue.stalled_s,
            sweep_s=queue.sweep_s,
            max_auto_resumes=queue.max_auto_resumes,
        )


class _FencedJobManager(JobManager):
    """Procrastinate's job manager, closing a job only while this worker still holds it.

    A worker paused past its heartbeat (SIGSTOP) whose job the sweep has handed to another
    worker must not mark that job finished when it wakes up; nor, when the job came back to this
    same worker, may the earlier execution close the later one's: the sweep's retry raised the
    job's ``attempts``, so the fetch it holds is told apart by them.
    """

    async def finish_job(self, job: Job, status: Status, delete_job: bool) -> None:
        pool = self.connector.pool  # type: ignore[attr-defined]
        async with pool.connection() as conn, conn.transaction():
            held = await conn.execute(
                "SELECT 1 FROM procrastinate_jobs WHERE id = %s AND status = 'doing' AND worker_id = %s "
                "AND attempts = %s FOR UPDATE",
                (job.id, job.worker_id, job.attempts),
            )
            if await held.fetchone() is None:
                logger.warning("job %s of run %s is no longer this worker's; left as it is", job.id, job.lock)
                return
            await conn.execute(
                sql.queries["finish_job"], {"job_id": job.id, "status": status.value, "delete_job": delete_job}
            )


class QueueWorker:
    """One worker process: Procrastinate's worker loop, the engine, the heartbeat of its runs, the sweep."""

    def __init__(self, url: str, settings: WorkerSettings, studio: Settings | None = None):
        self.settings = settings
        self.studio = studio or Settings.from_env()  # handed to each run: its model, tools and memory
        self.owner = process_owner()
        self.store = Store(url, on_write_failure=self._on_write_failure, settings=self.studio, pool_size=STORE_POOL)
        self.app = App(connector=PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=PROCRASTINATE_POOL))
        self.app.job_manager = _FencedJobManager(self.app.connector)
        self.app.task(name=TASK, queue=QUEUE, pass_context=True)(self._run_job)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._lost: set[str] = set()
        self._documents: dict[tuple[str, int], dict[str, Any]] = {}  # saved workflow versions read (immutable)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- one job: one run -------------------------------------------------------------------

    async def _run_job(self, context: JobContext, run_id: str) -> str:
        earlier = self._tasks.get(run_id)
        if earlier is not None:  # swept while alive (a missed heartbeat) and handed back to this very worker:
            # the earlier execution ends first; its last writes meet the epoch the sweep raised and are refused
            print(f"worker {self.owner}: run {run_id} handed back: its earlier execution here stops first",
                  file=sys.stderr, flush=True)
            self._lost.add(run_id)
            earlier.cancel()
            await asyncio.wait({earlier})
        # Synchronous on purpose (one short UPDATE): an abort cancels this task only at an await, and
        # none comes between the claim and the engine's start, whose cancel path then ends the run.
        claim = self._claim(run_id)
        if claim is None:
            return "not queued (cancelled, or already taken)"
        epoch, last_seq = int(claim.lease_epoch), int(claim.last_seq)
        self.store.writer.fence(run_id, epoch, last_seq)
        task = asyncio.current_task()
        assert task is not None
        self._tasks[run_id] = task
        print(f"worker {self.owner}: run {run_id} claimed (lease {epoch})", file=sys.stderr, flush=True)
        try:
            return await self._execute(run_id, claim)
        finally:
            self._tasks.pop(run_id, None)
            self._lost.discard(run_id)
            self.store.writer.unfence(run_id)

    def _claim(self, run_id: str) -> Any:
        """``queued -> running`` with a new lease epoch: the row's new epoch and what the run needs (its last
        seq, workflow version, inputs), or None when the run is not queued."""
        with self.store.engine.begin() as conn:
            row = conn.execute(
                update(RUNS)
                .where(RUNS.c.run_id == run_id, RUNS.c.status == "queued")
                .values(
                    status="running",
                    lease_epoch=RUNS.c.lease_epoch + 1,
                    owner=self.owner,
                    heartbeat_at=time.time(),
                    finished_at=None,
                    error=None,
                    resumed=RUNS.c.resumed + case((RUNS.c.last_seq > 0, 1), else_=0),
                )
                .returning(
                    RUNS.c.lease_epoch,
                    RUNS.c.last_seq,
                    RUNS.c.workflow_id,
                    RUNS.c.workflow_version,
                    RUNS.c.workflow_name,
                    RUNS.c.inputs,
                    RUNS.c.forked_from,
                )
            ).first()
        return row

    async def _execute(self, run_id: str, row: Any) -> str:
        """Run the claimed run (``row``: what :meth:`_claim` returned)."""
        store = self.store
        last_seq = int(row.last_seq)
        events = store.events(run_id) if last_seq else []  # a run never started has none: no query
        last = [last_seq]

        def sink(event: Event) -> None:
            store.append(event)
            last[0] = event.seq

        forked = row.forked_from
        replay: Replay | None = replay_from_events(events) if events and not forked else None
        try:
            document = self._document(row.workflow_id, row.workflow_version)
            if forked and forked.get("config") is not None:
                document = with_config(document, forked["node"], forked["config"])
            workflow = load_workflow(document)
            if forked and not events:  # a fork's first start: reuse the source run's outputs
                replay = self._fork_replay(workflow, forked)
            elif forked:  # a fork going on from its log: what the log lacks of the source's outputs is reused
                replay = resumed_fork_replay(workflow.plan, events, store, forked)
        except (EngineError, WorkflowInvalid) as exc:
            message = f"run '{run_id}' cannot run: {str(exc).splitlines()[0]}"
            seq = last_seq
            if seq == 0:
                seq += 1
                started: dict[str, Any] = {"inputs": row.inputs, "workflow": row.workflow_name}
                if forked:
                    started["forked_from"] = request_of(forked)[1]
                sink(Event(seq, run_id, time.time(), "run.started", None, started))
            sink(Event(seq + 1, run_id, time.time(), "run.failed", None, {"error": message, "node_id": None}))
            await self._committed(run_id, last[0])
            return "failed"
        studio = self._studio_now()
        llm = default_chat_model(studio.llm)
        result = await execute(
            workflow, dict(row.inputs), llm=llm, on_event=sink, run_id=run_id, replay=replay, settings=studio
        )
        await self._committed(run_id, last[0])
        if run_id in self._lost:
            return "lease lost: stopped without writing"
        return result.status

    def _fork_replay(self, workflow: Workflow, forked: dict[str, Any]) -> Replay:
        """A fork's replay, as local mode's ``Runtime.rerun`` builds it: the source run's events, the request.

        Raises:
            EngineError: the source run is gone. ForkInvalid: the request no longer fits (a pin's node never
                completed in the source).
        """
        source = str(forked["run_id"])
        if self.store.get_run(source) is None:
            raise EngineError(f"its source run '{source}' was deleted before the rerun started")
        request, forked_from = request_of(forked)
        return fork_replay(workflow.plan, self.store.events(source), request, forked_from)

    def _document(self, workflow_id: str, version: int | None) -> dict[str, Any]:
        """The saved version's document (a copy). Saved versions never change, so each is read once per worker.

        Raises:
            EngineError: it is missing from the store.
        """
        key = (workflow_id, version) if version else None
        document = self._documents.get(key) if key else None
        if document is None:
            saved = self.store.get_workflow(workflow_id, version)
            if saved is None:
                raise EngineError("its workflow version is missing from the store")
            document = saved[1].document
            if key:
                if len(self._documents) >= DOCUMENTS_KEPT:
                    self._documents.pop(next(iter(self._documents)))
                self._documents[key] = document
        return copy.deepcopy(document)

    def _studio_now(self) -> Settings:
        """The settings a run starts with: this worker's, with the Settings page's values saved in the database
        (read now, so a Save on the dashboard reaches the next run; engine.store.shared_settings)."""
        try:
            return apply_shared(self.studio, load_shared(self.store.engine))
        except StoreError as exc:
            logger.warning("%s; this run uses the worker's own settings", exc)
            return self.studio

    async def _committed(self, run_id: str, seq: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.store.writer.committed_future(run_id, seq), 30.0)

    def _on_write_failure(self, run_id: str, message: str) -> None:
        """The writer thread could not commit for ``run_id`` (its lease was lost, or the store failed): stop it."""
        print(f"worker {self.owner}: run {run_id}: {message}; stopped here", file=sys.stderr, flush=True)
        task = self._tasks.get(run_id)
        if task is None or self._loop is None:
            return
        self._lost.add(run_id)
        self._loop.call_soon_threadsafe(task.cancel)

    # --- liveness: the runs' heartbeat, and the sweep for dead workers -----------------------------

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            self.store.heartbeat(list(self._tasks))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_s)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - a failed sweep is retried on the next tick
                logger.warning("sweep failed: %s", exc)
            try:
                await asyncio.to_thread(self.apply_due_timeouts)
            except Exception as exc:  # noqa: BLE001 - as above
                logger.warning("approval timeout sweep failed: %s", exc)

    def apply_due_timeouts(self, now: float | None = None) -> list[tuple[str, str, str | None]]:
        """Decide the approvals whose timeout is due with their ``on_timeout``; each such run is queued again."""
        decided = apply_due_timeouts(self.store, now)
        for run_id, node, decision in decided:
            outcome = f"'{decision}'" if decision is not None else "fail"
            print(f"worker {self.owner}: run {run_id}: approval '{node}' timed out: {outcome}; queued",
                  file=sys.stderr, flush=True)
        return decided

    async def sweep(self) -> list[str]:
        """Recover the runs of dead workers; returns the ids of runs queued again or left interrupted."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            task_name=TASK, seconds_since_heartbeat=self.settings.stalled_s
        )
        handled = []
        for job in stalled:
            run_id = await asyncio.to_thread(self._recover, job)
            if run_id is not None:
                handled.append(run_id)
        return handled

    def _recover(self, job: Job) -> str | None:
        """One stalled job, in one transaction; the run's id when it was queued again or left interrupted."""
        run_id = str(job.lock)
        with self.store.engine.begin() as conn:
            # a paused worker may hold the run's row lock mid-commit: give up for this tick rather than hang
            conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            locked = conn.exec_driver_sql(
                "SELECT status::text, worker_id, attempts FROM procrastinate_jobs WHERE id = %(id)s FOR UPDATE",
                {"id": job.id},
            ).first()
            if locked is None or locked[0] != "doing" or locked[1] != job.worker_id:
                return None  # another sweep got there first
            attempts = int(locked[2])
            run = conn.execute(
                select(RUNS.c.status, RUNS.c.last_seq, RUNS.c.owner).where(RUNS.c.run_id == run_id).with_for_update()
            ).first()
            # ended (or began to wait for a decision, its job done) before its worker died: never "crashed"
            if run is None or run.status in FINISHED or run.status == "waiting":
                status = "succeeded" if run is not None else "failed"
                call(conn, "finish_job", job_id=job.id, status=status, delete_job=False)
                return None
            if run.status == "queued" and any(other["id"] != job.id for other in run_jobs(conn, run_id, ("todo",))):
                # decided while its dead worker still held the job that reached the wait: the decision's
                # job carries the run (retrying this one too would queue the run twice)
                call(conn, "finish_job", job_id=job.id, status="succeeded", delete_job=False)
                return None
            values: dict[str, Any] = {"lease_epoch": RUNS.c.lease_epoch + 1}
            if run.status == "running":
                dead = _who(run.owner, job.worker_id)
                note = {
                    "level": "warning",
                    "message": f"{dead} stopped answering (no heartbeat for {self.settings.stalled_s:g} s); "
                    "the run was interrupted",
                    "interrupted": True,
                    "worker": run.owner,
                }
                apply_events(conn, [Event(run.last_seq + 1, run_id, time.time(), "log", None, note)])
            if attempts < self.settings.max_auto_resumes:
                values.update(status="queued", error=None)
                now = datetime.datetime.now(datetime.UTC)
                call(
                    conn,
                    "retry_job",
                    job_id=job.id,
                    retry_at=now,
                    new_priority=None,
                    new_queue_name=None,
                    new_lock=None,
                )
                outcome = "queued again"
            else:
                values.update(
                    status="interrupted",
                    error=f"its worker stopped; not resumed automatically after {attempts} automatic resumes "
                    "(MAX_AUTO_RESUMES): resume it by hand",
                    finished_at=time.time(),
                )
                call(conn, "finish_job", job_id=job.id, status="failed", delete_job=False)
                outcome = "left interrupted"
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(**values))
        print(f"worker {self.owner}: run {run_id} of a dead worker: {outcome}", file=sys.stderr, flush=True)
        return run_id

    # --- the process ------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM (Procrastinate's handlers: running runs finish first)."""
        self._loop = asyncio.get_running_loop()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        side = [asyncio.create_task(self._beat()), asyncio.create_task(self._sweep_forever())]
        try:
            async with self.app.open_async():
                print(
                    f"worker {self.owner}: ready (concurrency {self.settings.concurrency}, "
                    f"store {self.store.url.split('@')[-1]})",
                    file=sys.stderr,
                    flush=True,
                )
                await self.app.run_worker_async(
                    queues=[QUEUE],
                    name=f"studio {self.owner}",
                    concurrency=self.settings.concurrency,
                    update_heartbeat_interval=self.settings.heartbeat_s,
                    stalled_worker_timeout=self.settings.stalled_s,
                    abort_job_polling_interval=max(1.0, self.settings.heartbeat_s),
                    fetch_job_polling_interval=max(1.0, self.settings.heartbeat_s),
                )
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            self.store.close()


def _who(owner: str, worker_id: int | None) -> str:
    """``host:pid:start`` as words for the event."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    return f"worker {worker_id} ({host} pid {pid})" if pid else f"worker {worker_id}"


def open_worker(url: str | None, settings: WorkerSettings, studio: Settings | None = None) -> QueueWorker:
    """A worker over the store at ``url`` (default ``DATABASE_URL`` of ``studio``, the settings its runs get;
    default: the environment's).

    Memory is the shared one (:func:`engine.queue.shared.shared_memory`): short-term turns in PostgreSQL,
    long-term memories on the Chroma server at ``CHROMA_HOST``.

    Raises:
        QueueModeInvalid: not PostgreSQL, memory in a file (SQLite, no ``CHROMA_HOST``), or ``migrate`` has not
            been run. StoreError: cannot open it.
    """
    from engine.store.db import database_url

    studio = studio or Settings.from_env()
    resolved = database_url(url, settings=studio)
    require_postgres(resolved)
    studio = shared_memory(studio, resolved, refuse=True)
    # The OpenAI client's import takes seconds on a busy machine; done inside the first run that meets an endpoint
    # (a Settings page Save can name one at any time) it would stall the event loop and with it the heartbeat.
    import engine.llm.openai_model  # noqa: F401

    worker = QueueWorker(resolved, settings, studio)
    if not has_schema(worker.store.engine):
        worker.store.close()
        raise QueueModeInvalid("the queue's tables are missing: run `python -m engine migrate` once first")
    return worker


__all__ = ["QueueWorker", "WorkerSettings", "open_worker"]
