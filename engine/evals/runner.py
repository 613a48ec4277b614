"""Running an evaluation: one normal durable run per dataset row, a bounded number at once.

Each row's run has an id derived from the evaluation id and the row number
(``uuid5``), and is submitted with :meth:`Runtime.submit`'s idempotent
``run_id``: a resumed evaluation finds the row's run where it stands (completed:
only scored; interrupted: resumed; absent: started), so no row runs twice to
completion. Row outcomes are stored in small batches (at most ``WRITE_BATCH`` rows or
``WRITE_EVERY_S`` apart; one commit per row cost a third of an evaluation's time): a crash loses at
most the outcomes of one batch, whose runs are complete and are only scored again on resume;
:meth:`Evaluator.resume` continues the rest. Cancel
stops the running rows' runs and leaves the others pending.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.costs import Usage, cost_of, prices_from
from engine.errors import EngineError, InputsInvalid, Problem
from engine.evals.dataset import Dataset, DatasetInvalid, prepare_rows
from engine.evals.judge import judge
from engine.evals.results import Summary, summarize
from engine.evals.scorers import ScorerSpec, answer_of, parse_scorers, score
from engine.evals.store import ROW_DONE, EvalStore
from engine.evals.tables import EvalRowTable, EvalTable
from engine.llm import default_chat_model
from engine.model import Workflow
from engine.runtime import Runtime
from engine.store import process_owner
from engine.validate import load_workflow

NAMESPACE = uuid.UUID("6f1c2f7e-6a53-4a2e-9a57-0e3f5d1d7a11")
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
EVAL_FINISHED = ("completed", "cancelled")
WRITE_BATCH = 32  # row outcomes stored per transaction at most ...
WRITE_EVERY_S = 0.25  # ... or after this long (the Evaluate page shows rows as they are stored)


class EvalNotFound(EngineError):
    retryable = False


class EvalNotResumable(EngineError):
    retryable = False


def row_run_id(eval_id: str, index: int) -> str:
    """The run id of row ``index`` of ``eval_id`` (the same on every try: resuming never starts it twice)."""
    return uuid.uuid5(NAMESPACE, f"{eval_id}:{index}").hex


def next_run_id(run_id: str) -> str:
    """The id a row's next run gets after its run ``run_id`` was cancelled (stored before it starts)."""
    return uuid.uuid5(NAMESPACE, f"after:{run_id}").hex


@dataclass
class _Active:
    eval_id: str
    total: int
    done: int = 0
    cancelled: bool = False
    fresh: bool = False  # started now (not resumed): no row's run can exist yet
    running: set[str] = field(default_factory=set)
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    unwritten: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # row outcomes not yet stored
    written_at: float = field(default_factory=time.monotonic)
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # one batch at a time, in order


ProgressFn = Callable[[str, int, int], None]


class Evaluator:
    """Evaluations over one runtime (its store holds the evaluation tables; its runs are the rows' runs)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = EvalStore(runtime.store.engine)
        self.interrupted_at_start = self.store.mark_interrupted()
        self._owner = process_owner()
        self._active: dict[str, _Active] = {}
        self._lock = threading.Lock()
        self._listeners: list[ProgressFn] = []

    # --- starting ---------------------------------------------------------------------------

    def prepare(
        self, workflow: Workflow | Mapping[str, Any] | str, dataset: Dataset, scorers: list[str], expected: str
    ) -> tuple[Workflow, list[ScorerSpec], list[Any]]:
        """Check everything before anything runs; raises WorkflowInvalid, or EvalInvalid naming every problem."""
        loaded = load_workflow(workflow, tools=self.runtime.tools)
        problems: list[Problem] = []
        specs: list[ScorerSpec] = []
        rows: list[Any] = []
        try:
            specs = parse_scorers(scorers)
        except EngineError as exc:
            problems.extend(getattr(exc, "problems", []))
        try:
            rows = prepare_rows(loaded, dataset, expected)
        except DatasetInvalid as exc:
            problems.extend(exc.problems)
        if not scorers:
            problems.append(Problem("scorers", "name at least one, e.g. --scorer exact"))
        if problems:
            raise DatasetInvalid(problems)
        return loaded, specs, rows

    def start(
        self,
        workflow: Workflow | Mapping[str, Any] | str,
        dataset: Dataset,
        scorers: list[str],
        *,
        expected: str = "expected",
        concurrency: int = DEFAULT_CONCURRENCY,
        threshold: float = 0.5,
    ) -> str:
        """Start an evaluation in the background; its id.

        Raises:
            WorkflowInvalid, DatasetInvalid (every dataset and scorer problem at once), ValueError (concurrency).
        """
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
        loaded, specs, rows = self.prepare(workflow, dataset, scorers, expected)
        ref = self.runtime.save_workflow(loaded.to_dict())
        eval_id = uuid.uuid4().hex
        record = EvalTable(
            id=eval_id,
            workflow_id=ref.id,
            workflow_version=ref.version,
            workflow_name=loaded.name,
            dataset_name=dataset.name,
            expected_column=expected,
            scorers=[s.spec for s in specs],
            threshold=threshold,
            concurrency=concurrency,
            status="running",
            owner=self._owner,
            created_at=time.time(),
        )
        table_rows = [
            EvalRowTable(
                eval_id=eval_id,
                row_index=r.index,
                status="invalid" if r.error else "pending",
                run_id=None if r.error else row_run_id(eval_id, r.index),
                inputs=r.inputs,
                expected=r.expected,
                meta=r.meta,
                error=r.error,
            )
            for r in rows
        ]
        self.store.create(record, table_rows)
        self._launch(record, loaded, specs, fresh=True)
        return eval_id

    def resume(self, eval_id: str) -> str:
        """Continue an interrupted evaluation: only its unfinished rows run (a row's run is resumed, not redone)."""
        record = self.store.get(eval_id)
        if record is None:
            raise EvalNotFound(f"no evaluation '{eval_id}'")
        with self._lock:
            if eval_id in self._active:
                raise EvalNotResumable(f"evaluation '{eval_id}' is running here")
        if record.status == "running":
            self.store.mark_interrupted()
            record = self.store.get(eval_id) or record
        if record.status not in ("interrupted", "cancelled"):
            raise EvalNotResumable(
                f"evaluation '{eval_id}' is {record.status}; only interrupted or cancelled ones resume"
            )
        saved = self.runtime.store.get_workflow(record.workflow_id, record.workflow_version)
        if saved is None:
            raise EvalNotResumable(f"evaluation '{eval_id}': its workflow version is missing from the store")
        loaded = load_workflow(saved[1].document, tools=self.runtime.tools)
        self.store.set_status(eval_id, "running", owner=self._owner)
        self._launch(record, loaded, parse_scorers(list(record.scorers)))
        return eval_id

    def cancel(self, eval_id: str) -> bool:
        """Stop an evaluation running here: its running rows' runs are cancelled, the rest stay pending."""
        with self._lock:
            active = self._active.get(eval_id)
        if active is None:
            return False
        with active.lock:
            active.cancelled = True
            running = list(active.running)
        for run_id in running:
            self.runtime.cancel(run_id)
        return True

    def wait(self, eval_id: str, timeout: float | None = None) -> EvalTable:
        with self._lock:
            active = self._active.get(eval_id)
        if active is not None:
            active.finished.wait(timeout)
        record = self.store.get(eval_id)
        if record is None:
            raise EvalNotFound(f"no evaluation '{eval_id}'")
        return record

    def progress(self, eval_id: str) -> tuple[int, int] | None:
        """``(finished rows, rows)`` of an evaluation running here, else None."""
        with self._lock:
            active = self._active.get(eval_id)
        return None if active is None else (active.done, active.total)

    def on_progress(self, listener: ProgressFn) -> None:
        """Call ``listener(eval_id, done, total)`` after each finished row (from a worker thread)."""
        self._listeners.append(listener)

    # --- reading ---------------------------------------------------------------------------

    def get(self, eval_id: str) -> EvalTable | None:
        return self.store.get(eval_id)

    def rows(self, eval_id: str) -> list[EvalRowTable]:
        return self.store.rows(eval_id)

    def rows_of_runs(self, run_ids: list[str]) -> dict[str, tuple[str, int]]:
        """Which evaluation (id, row number) each of ``run_ids`` belongs to; user runs are left out."""
        return self.store.rows_of_runs(run_ids) if run_ids else {}

    def recent(self, limit: int = 50) -> list[EvalTable]:
        return self.store.recent(limit=limit)

    def summary(self, eval_id: str) -> Summary:
        record = self.store.get(eval_id)
        if record is None:
            raise EvalNotFound(f"no evaluation '{eval_id}'")
        return summarize(self.store.rows(eval_id), list(record.scorers), record.threshold)

    # --- inside ----------------------------------------------------------------------------

    def _launch(self, record: EvalTable, workflow: Workflow, specs: list[ScorerSpec], *, fresh: bool = False) -> None:
        rows = self.store.rows(record.id)
        todo = [r for r in rows if r.status not in ROW_DONE]
        active = _Active(record.id, total=len(rows), done=len(rows) - len(todo), fresh=fresh)
        with self._lock:
            self._active[record.id] = active
        thread = threading.Thread(
            target=self._drive, args=(record, workflow, specs, todo, active), name=f"eval-{record.id[:8]}", daemon=True
        )
        thread.start()

    def _drive(
        self, record: EvalTable, workflow: Workflow, specs: list[ScorerSpec], todo: list[EvalRowTable], active: _Active
    ) -> None:
        try:
            with concurrent.futures.ThreadPoolExecutor(record.concurrency, thread_name_prefix="eval-row") as pool:
                waiting = {pool.submit(self._row, record, workflow, specs, row, active) for row in todo}
                while waiting:  # woken at least every WRITE_EVERY_S: a finished row never waits for the next one
                    done, waiting = concurrent.futures.wait(
                        waiting, timeout=WRITE_EVERY_S, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in done:
                        future.result()
                    self._write(active)
            self._write(active, force=True)
            status = "cancelled" if active.cancelled else "completed"
            self.store.set_status(record.id, status, finished_at=time.time())
        finally:
            with contextlib.suppress(Exception):  # after a failure: keep the outcomes of the rows that finished
                self._write(active, force=True)
            with self._lock:
                self._active.pop(record.id, None)
            active.finished.set()

    def _row(
        self, record: EvalTable, workflow: Workflow, specs: list[ScorerSpec], row: EvalRowTable, active: _Active
    ) -> None:
        if active.cancelled:
            return
        run_id = row.run_id or row_run_id(record.id, row.row_index)
        try:
            self._run(run_id, workflow, row.inputs, active)
        except _Skipped:
            return
        except (InputsInvalid, EngineError) as exc:
            self._store_row(active, row.row_index, {"status": "invalid", "error": str(exc)[:500]})
            self._advance(active)
            return
        info = self.runtime.wait(run_id)
        while not info.finished:
            info = self.runtime.wait(run_id, timeout=1.0)
        with active.lock:
            active.running.discard(run_id)
        latency = (info.finished_at - info.created_at) if info.finished_at and info.created_at else None
        tokens = info.prompt_tokens + info.completion_tokens
        cost = self._cost(run_id) if tokens else 0.0
        if info.status == "completed":
            output = answer_of(info.result)
            scores = {s.spec: self._score(s, output, row.expected, row.inputs) for s in specs}
            values: dict[str, Any] = {"status": "completed", "output": output, "scores": scores, "error": None}
        elif info.status == "cancelled" and active.cancelled:
            # stopped by the cancel: a resume runs it again under the next id (a cancelled run cannot be resumed)
            values = {"status": "pending", "run_id": next_run_id(run_id)}
        else:
            values = {"status": "failed", "output": info.result, "error": info.error or info.status, "scores": {}}
        values.setdefault("run_id", run_id)
        values.update(tokens=tokens, cost_usd=cost, latency_s=latency)
        self._store_row(active, row.row_index, values)
        if values["status"] != "pending":
            self._advance(active)

    def _run(self, run_id: str, workflow: Workflow, inputs: dict[str, Any], active: _Active) -> None:
        with active.lock:
            if active.cancelled:
                raise _Skipped
            active.running.add(run_id)
        info = None if active.fresh else self.runtime.status(run_id)
        if info is None:
            self.runtime.submit(workflow, inputs, run_id=run_id)
        elif info.status in ("interrupted",):
            self.runtime.resume(run_id)  # finished nodes are reloaded, not re-run

    def _store_row(self, active: _Active, index: int, values: dict[str, Any]) -> None:
        with active.lock:
            active.unwritten.append((index, values))
        self._write(active)

    def _write(self, active: _Active, *, force: bool = False) -> None:
        """Store the row outcomes not yet written, in one transaction, once WRITE_BATCH of them wait or
        WRITE_EVERY_S passed since the last batch (``force``: now). A crash loses at most that batch's
        outcomes, never a run: their rows' completed runs are only scored again on resume."""
        with active.lock:
            due = force or len(active.unwritten) >= WRITE_BATCH or time.monotonic() - active.written_at >= WRITE_EVERY_S
            if not due or not active.unwritten or not active.write_lock.acquire(blocking=force):
                return
            batch, active.unwritten = active.unwritten, []
            active.written_at = time.monotonic()
        try:
            self.store.update_rows(active.eval_id, batch)
        finally:
            active.write_lock.release()
        if force:
            self._write(active, force=True)  # outcomes that came in while this batch was written

    def _advance(self, active: _Active) -> None:
        with active.lock:
            active.done += 1
            done, total = active.done, active.total
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):  # a listener's bug must not stop the evaluation
                listener(active.eval_id, done, total)

    def _score(self, spec: ScorerSpec, output: Any, expected: Any, inputs: Any) -> dict[str, Any]:
        if spec.is_judge:
            settings = self.runtime.settings
            model = default_chat_model(settings.llm)
            verdict = asyncio.run(judge(model, settings.llm.default_model, spec.arg, output, expected, inputs))
        else:
            verdict = score(spec, output, expected)
        return {"score": verdict.value, "reason": verdict.reason}

    def _cost(self, run_id: str) -> float:
        prices = prices_from(self.runtime.settings.saved.prices)
        if not prices:
            return 0.0
        return cost_of(Usage.of(self.runtime.events_since(run_id)), prices).usd


class _Skipped(EngineError):
    """The evaluation was cancelled before this row started."""


_EVALUATORS: weakref.WeakKeyDictionary[Runtime, Evaluator] = weakref.WeakKeyDictionary()
_EVALUATORS_LOCK = threading.Lock()


def evaluator_for(runtime: Runtime) -> Evaluator:
    """The one :class:`Evaluator` of ``runtime`` in this process (the pages and the API share it)."""
    with _EVALUATORS_LOCK:
        found = _EVALUATORS.get(runtime)
        if found is None:
            found = _EVALUATORS[runtime] = Evaluator(runtime)
        return found
